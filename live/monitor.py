"""How the live forecasts did: logged predictions against the labels as they mature, and drift.

Calibration: each logged prediction of a bar (the cached `risk` one; request predictions only
where no cached one exists for the bar), logged in the last `CALIBRATION_DAYS`, is joined with
that bar's flush label, computed by `training.labels.make_labels` from the store once the H
hours after the bar are in it. On the
matured ones: Brier score, Brier skill against the model's training base rate (the climatology
the risk bands are read against), ECE and the reliability table, beside the same figures from
the model's walk-forward evaluation. Few matured predictions make these noisy: the counts come
with them.

Drift: the population stability index per feature between the training span recorded in the
bundle and the recent bars (default the last 30 days), on the known values, binned at the
reference's deciles: PSI = sum over bins of (recent - reference) * ln(recent / reference).
Missing values are reported beside it as shares, not binned: the first weeks of any history lack
the long-window features, which would otherwise dominate the index. Rule of thumb: below 0.1
stable, 0.1-0.25 moderate shift, above 0.25 a shift the model was not trained on; features
with long windows move slowly, so a short recent window can show a shift that is only the
current regime.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError
from flushcast.features.build import build_features
from flushcast.marketdata.schema import BAR
from flushcast.models.bundle import Bundle
from flushcast.training.labels import LabelSpec, flush_column, make_labels
from flushcast.training.metrics import brier, ece, reliability_table
from flushcast.training.record import EvaluationRecord

KEYS = ["symbol", "venue", "as_of", "horizon_hours"]
DRIFT_DAYS = 30
CALIBRATION_DAYS = 30
"""Live calibration covers the predictions logged in the 30 days up to the log's latest day
(`live.predictions_log.read_recent`): the figures follow the model's recent record, and
reading them costs one window of the log, not its whole history."""
PSI_BINS = 10
PSI_FLOOR = 1e-4
"""Smallest share a bin counts with: an empty bin would make ln infinite."""
MIN_REFERENCE_ROWS = 100


@dataclass
class HorizonCheck:
    horizon_hours: int
    predictions: int
    matured: int
    flushes: int
    brier: float | None
    brier_skill: float | None
    ece: float | None
    reliability: list[dict[str, float]]
    walk_forward: dict[str, float | None]
    """The same figures from the model's walk-forward evaluation (None: not recorded)."""


@dataclass
class Drift:
    feature: str
    psi: float | None
    level: str
    """stable, moderate or shifted; `unknown` when either window has no values."""
    missing_training: float
    missing_recent: float
    """Shares of bars without a value in each window."""


@dataclass
class MonitorReport:
    model_version: str | None
    generated_at: str
    horizons: list[HorizonCheck]
    drift: list[Drift]
    drift_window: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def chosen_predictions(log: pd.DataFrame, model_version: str | None) -> pd.DataFrame:
    """One prediction per bar and horizon: the cached one, else the first request for it."""
    rows = log[log["as_of"].notna()]
    if model_version is not None:
        rows = rows[rows["model_version"] == model_version]
    rows = rows.assign(_cached=(rows["source"] != "risk").astype(int))
    rows = rows.sort_values(["_cached", "logged_at"], kind="stable")
    return rows.drop_duplicates(KEYS).drop(columns="_cached").reset_index(drop=True)


def join_labels(
    predictions: pd.DataFrame, market: pd.DataFrame, label: LabelSpec, bar: pd.Timedelta = BAR
) -> pd.DataFrame:
    """`predictions` with `flush` (1, 0, or NaN while the window has not matured), labelled at
    the model's bar size."""
    labels = make_labels(market, label, bar=bar)
    labels = labels.assign(symbol=labels["symbol"].astype(str), venue=labels["venue"].astype(str))
    parts = []
    for h in sorted(set(predictions["horizon_hours"].astype(int))):
        mine = predictions[predictions["horizon_hours"] == h]
        if flush_column(h) not in labels:
            parts.append(mine.assign(flush=np.nan))
            continue
        known = labels[["timestamp", "symbol", "venue", flush_column(h)]].rename(
            columns={"timestamp": "as_of", flush_column(h): "flush"}
        )
        parts.append(
            mine.astype({"symbol": str, "venue": str}).merge(
                known, on=["as_of", "symbol", "venue"], how="left"
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else predictions.assign(flush=np.nan)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of `current` against `reference`, on their known values."""
    reference = np.asarray(reference, dtype="float64")
    current = np.asarray(current, dtype="float64")
    reference, current = reference[~np.isnan(reference)], current[~np.isnan(current)]
    if not len(reference) or not len(current):
        return float("nan")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        return np.maximum(counts / len(values), PSI_FLOOR)

    r, c = shares(reference), shares(current)
    return float(np.sum((c - r) * np.log(c / r)))


def drift_level(value: float) -> str:
    if not math.isfinite(value):
        return "unknown"
    return "stable" if value < 0.1 else "moderate" if value <= 0.25 else "shifted"


def feature_drift(
    bundle: Bundle, market: pd.DataFrame, end: pd.Timestamp, days: int = DRIFT_DAYS
) -> tuple[list[Drift], dict[str, str], list[str]]:
    """PSI per model feature: the bundle's training span against the `days` before `end`."""
    notes = []
    start = pd.Timestamp(bundle.training.get("data_start", market["timestamp"].min()))
    stop = pd.Timestamp(bundle.training.get("data_end", market["timestamp"].max()))
    recent_from = end - pd.Timedelta(days=days)
    window = {
        "training": f"{start:%Y-%m-%d %H:%M} → {stop:%Y-%m-%d %H:%M}",
        "recent": f"{recent_from:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}",
    }
    needed = market[
        (market["timestamp"] >= start)
        | (market["timestamp"] > recent_from - bundle.max_lookback * bundle.bar)
    ]
    table = build_features(needed, bar=bundle.bar)
    reference = table[(table["timestamp"] >= start) & (table["timestamp"] <= stop)]
    recent = table[(table["timestamp"] > recent_from) & (table["timestamp"] <= end)]
    if len(reference) < MIN_REFERENCE_ROWS:
        notes.append(
            f"drift not measured: the store has {len(reference)} bars of the training span "
            f"({window['training']}); give the store the model was trained on"
        )
        return [], window, notes
    drift = []
    for name in bundle.features:
        before, after = reference[name].to_numpy(), recent[name].to_numpy()
        value = psi(before, after)
        drift.append(
            Drift(
                name,
                None if math.isnan(value) else value,
                drift_level(value),
                float(np.isnan(before).mean()),
                float(np.isnan(after).mean()) if len(after) else 1.0,
            )
        )
    drift.sort(key=lambda d: -1.0 if d.psi is None else -d.psi)
    return drift, window, notes


def _walk_forward(
    bundle: Bundle, record: EvaluationRecord | None, horizon: int
) -> dict[str, float | None]:
    """Brier, Brier skill and ECE of the model's walk-forward evaluation at `horizon`: the
    champion's (the candidate the walk-forward chose is the one the version was fitted as)."""
    if record is not None and horizon in record.horizons:
        entry = record.horizons[horizon]
        return {m: entry.metric("champion", m) for m in ("brier", "brier_skill", "ece")}
    summary = bundle.evaluation.get("horizons", {}).get(str(horizon), {})
    return {m: summary.get(m) for m in ("brier", "brier_skill", "ece")}


def calibration(
    joined: pd.DataFrame, bundle: Bundle, walk_forward: EvaluationRecord | None
) -> list[HorizonCheck]:
    checks = []
    for h in sorted(bundle.horizons):
        mine = joined[joined["horizon_hours"] == h]
        matured = mine[mine["flush"].notna()]
        y = matured["flush"].to_numpy(dtype="float64")
        p = matured["p_flush"].to_numpy(dtype="float64")
        base = bundle.horizons[h].base_rate
        if len(y):
            score = brier(y, p)
            climatology = brier(y, np.full(len(y), base))
            skill = 1.0 - score / climatology if climatology > 0 else None
            table = reliability_table(y, p).to_dict(orient="records")
            calibration_error = ece(y, p)
        else:
            score = skill = calibration_error = None
            table = []
        checks.append(
            HorizonCheck(
                horizon_hours=h,
                predictions=len(mine),
                matured=len(matured),
                flushes=int(y.sum()),
                brier=score,
                brier_skill=skill,
                ece=calibration_error,
                reliability=table,
                walk_forward=_walk_forward(bundle, walk_forward, h),
            )
        )
    return checks


def monitor(
    log: pd.DataFrame,
    market: pd.DataFrame,
    bundle: Bundle,
    model_version: str | None,
    *,
    walk_forward: EvaluationRecord | None = None,
    now: datetime | None = None,
    drift_days: int = DRIFT_DAYS,
) -> MonitorReport:
    """Live calibration of `model_version`'s logged predictions and feature drift."""
    if market.empty:
        raise DataError("no market data: monitoring needs the store the service reads")
    notes: list[str] = []
    predictions = chosen_predictions(log, model_version)
    if predictions.empty:
        notes.append(f"no logged predictions of model version {model_version} yet")
        joined = predictions.assign(flush=np.nan)
    else:
        try:
            joined = join_labels(
                predictions, market, LabelSpec.from_params(bundle.label), bundle.bar
            )
        except DataError as exc:  # e.g. a new store: no liquidation history to label with yet
            notes.append(f"no labels yet: {exc}")
            joined = predictions.assign(flush=np.nan)
    drift, window, drift_notes = feature_drift(
        bundle, market, market["timestamp"].max(), drift_days
    )
    generated = (now or pd.Timestamp.now(tz="UTC")).isoformat()
    return MonitorReport(
        model_version=model_version,
        generated_at=generated,
        horizons=calibration(joined, bundle, walk_forward),
        drift=drift,
        drift_window=window,
        notes=notes + drift_notes,
    )
