"""Fit the deployable bundle on everything in the store, the same way each walk-forward fold fits.

The last `validation_fraction` of the span (after a purge-and-embargo gap) is held out for early
stopping and calibration, exactly as inside a fold, so the walk-forward figures describe the
recipe that produced this bundle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.registry import max_lookback
from marketdata.errors import DataError
from models.bundle import Bundle, HorizonModels, model_matrix
from models.lgbm import FitSpec, fit_direction, fit_flush
from training.dataset import Dataset, feature_lookbacks, require_enough
from training.evaluate import EvalSpec, direction_target, symbols_of
from training.labels import direction_column, flush_column
from training.splits import final_split


def fit_bundle(
    dataset: Dataset,
    spec: EvalSpec | None = None,
    fit: FitSpec | None = None,
    evaluation: dict[str, Any] | None = None,
) -> Bundle:
    """One flush model (and direction model) per horizon of `spec`, bundled with their spec."""
    spec = spec or EvalSpec()
    fit = fit or FitSpec()
    symbols = symbols_of(dataset)
    horizons: dict[int, HorizonModels] = {}
    rows_used: dict[str, int] = {}
    for h in spec.horizons:
        require_enough(dataset, h, spec.min_train, spec.min_events)
        rows = dataset.labelled(h)
        X = model_matrix(rows, dataset.features, symbols)
        y = rows[flush_column(h)].to_numpy(dtype="float64")
        fit_rows, val_rows = final_split(rows["timestamp"], spec.split(h))
        if not 0 < y[fit_rows].sum() < len(fit_rows):
            raise DataError(
                f"H={h}: every flush falls in the validation tail; nothing to fit on before it",
                column=flush_column(h),
            )
        flush = fit_flush(X.iloc[fit_rows], y[fit_rows], X.iloc[val_rows], y[val_rows], fit)
        sided, is_long = direction_target(rows[direction_column(h)])
        d_fit, d_val = fit_rows[sided[fit_rows]], val_rows[sided[val_rows]]
        direction = fit_direction(X.iloc[d_fit], is_long[d_fit], X.iloc[d_val], is_long[d_val], fit)
        horizons[h] = HorizonModels(h, flush, direction, float(np.mean(y)))
        rows_used[f"rows_{h}h"] = len(rows)
    return Bundle(
        horizons=horizons,
        features=list(dataset.features),
        lookbacks=feature_lookbacks(dataset.features),
        max_lookback=max_lookback(),
        symbols=symbols,
        label=dataset.label.to_params(),
        fit=fit.to_params(),
        training={"series": dataset.series, **dataset.span(), **rows_used},
        evaluation=evaluation or {},
    )
