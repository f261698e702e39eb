"""`backtest(forecaster, market, cv=WalkForward(...))`: the walk-forward, from a notebook.

It is the evaluation `flushcast evaluate` runs (every candidate, the champion chosen per fold on
earlier folds only, every baseline, the same folds), returned as an object with the long
prediction frame, a metrics table pooled and within folds, and the plots.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from flushcast.common.engine import engine
from flushcast.training import plots
from flushcast.training.evaluate import Evaluation, evaluate, model_names
from flushcast.training.forecaster import FlushForecaster
from flushcast.training.metrics import METRICS, reliability_table
from flushcast.training.record import EvaluationRecord
from flushcast.training.splits import WalkForward

RELIABILITY_MIN_ROWS = 30


@dataclass
class Backtest:
    """A walk-forward evaluation's results."""

    evaluation: Evaluation
    models: list[str]

    @property
    def record(self) -> EvaluationRecord:
        """The typed evaluation record (what the JSON, the CLI table and the gate read)."""
        return self.evaluation.record

    @property
    def predictions(self) -> pd.DataFrame:
        """Every out-of-sample row: keys, horizon, fold, its cutoff (the last training bar
        time, exclusive), y, and `p_<model>` for every model and the champion."""
        frame = self.evaluation.long_predictions()
        cutoffs = self.folds.set_index(["horizon", "fold"])["train_end"]
        index = pd.MultiIndex.from_frame(frame[["horizon", "fold"]])
        frame.insert(frame.columns.get_loc("fold") + 1, "cutoff", cutoffs.reindex(index).array)
        return frame

    @property
    def folds(self) -> pd.DataFrame:
        """One row per fold and horizon: span, counts, status, the champion and its evidence."""
        return self.evaluation.folds

    def metrics(self) -> pd.DataFrame:
        """Horizon × model rows, one column per metric (pooled and within folds)."""
        rows = []
        for h, entry in sorted(self.record.horizons.items()):
            for model, values in entry.models.items():
                rows.append({"horizon": h, "model": model, **values.model_dump()})
        table = pd.DataFrame(rows).set_index(["horizon", "model"])
        return table[[m.key for m in METRICS] + ["folds_used", "direction_accuracy"]]

    def plot_reliability(self, horizon: int) -> Figure:
        """Forecast against observed flush frequency for every model at `horizon`."""
        frame = self.evaluation.predictions[horizon]
        y = frame["y"].to_numpy()
        curves = {}
        for model in self.models:
            table = reliability_table(y, frame[f"p_{model}"].to_numpy(), n_bins=20)
            curves[model] = table[table["count"] >= RELIABILITY_MIN_ROWS]
        return plots.reliability_plot(curves, f"Reliability, {horizon} h (walk-forward)")

    def plot_timeline(self, horizon: int) -> Figure:
        """The champion's PR-AUC per fold over time, with the flushes of each test window."""
        folds = self.folds
        scored = folds[(folds["horizon"] == horizon) & (folds["status"] == "scored")]
        return plots.fold_timeline(scored, f"Champion PR-AUC per fold, {horizon} h")


def backtest(
    forecaster: FlushForecaster,
    market: pd.DataFrame,
    cv: WalkForward | None = None,
    *,
    bar: pd.Timedelta | None = None,
    cluster: str | None = None,
) -> Backtest:
    """Walk-forward evaluation of `forecaster`'s recipe on `market` (its own `cv` if given);
    `cluster` as `flushcast evaluate --cluster` (default: $FLUSHCAST_CLUSTER, else local)."""
    config = forecaster.resolved_config()
    if cv is not None:
        config = config.model_copy(update={"walk_forward": cv})
    evaluation = evaluate(forecaster.dataset(market, bar), config, runner=engine(cluster))
    return Backtest(evaluation, model_names(config))
