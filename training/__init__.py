"""Labels, purged walk-forward splits, calibration, baselines and metrics for the flush models.

Nothing here imports LightGBM or MLflow, so labels and metrics can be used without them.
"""
