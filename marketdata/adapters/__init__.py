"""Readers for market-data files in their native formats.

Each module exposes `read(path, *, symbol=None, tz=None, venue=None) -> list[SourceFrame]` and
converts to canonical units (USD notionals, funding as a fraction per 8 h, UTC timestamps); the
ingest pipeline (`marketdata.ingest`) resamples and merges what they return.
"""
