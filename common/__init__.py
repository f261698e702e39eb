"""The small shared utilities every layer may use: errors, atomic writes, progress, CLI exits.

The lowest layer: it imports nothing of the project's.
"""
