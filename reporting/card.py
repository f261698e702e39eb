"""The model card: which model, trained on what, the label it predicts, how it scored.

The walk-forward figures against the baselines and the reliability plots are artefacts of the
version's training run (`evaluation.json`, `reliability_{H}h.png`), not part of the bundle.
`WalkForward.read` takes them from a folder, so the report needs no MLflow once they are
downloaded (`download_walk_forward`, e.g. into a packaged model; the CLI uses
`load_walk_forward`). Without them the card falls back to the summary stored in the bundle.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flushcast.models.bundle import Bundle
from flushcast.models.direction import made_of
from flushcast.reporting.charts import png_uri
from flushcast.reporting.sentences import when
from flushcast.training.labels import LabelSpec
from flushcast.training.metrics import METRICS as ALL_METRICS
from flushcast.training.record import EvaluationRecord, champion_made_of

DOCUMENT = "evaluation.json"
RELIABILITY = re.compile(r"reliability_(\d+)h\.png")
ARTEFACT_FOLDERS = ("evaluation", "")
"""Where a training run may keep its evaluation artefacts: a subfolder, else the run root."""
CARD_METRICS = ("pr_auc", "roc_auc_within_fold", "lift_within_fold", "brier_skill", "ece")
METRICS = {m.key: m.label for m in ALL_METRICS if m.key in CARD_METRICS}
"""Walk-forward metrics the card shows, with their headings (from the one metric table)."""
SUMMARY_METRICS = ("pr_auc", "roc_auc_within_fold", "lift_within_fold", "brier_skill")


@dataclass(frozen=True)
class WalkForward:
    """A version's walk-forward evaluation: the JSON document and reliability PNG per horizon."""

    record: EvaluationRecord
    reliability: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: str | Path) -> WalkForward:
        """Read `evaluation.json` and any `reliability_{H}h.png` from `folder`."""
        folder = Path(folder)
        path = folder / DOCUMENT
        if not path.is_file():
            raise FileNotFoundError(f"no walk-forward evaluation at {folder} ({DOCUMENT} missing)")
        record = EvaluationRecord.from_document(json.loads(path.read_text()))
        reliability = {
            int(match[1]): path.read_bytes()
            for path in folder.glob("reliability_*h.png")
            if (match := RELIABILITY.fullmatch(path.name))
        }
        return cls(record, reliability)


def download_walk_forward(
    run_id: str, target: str | Path, tracking_uri: str | None = None
) -> Path | None:
    """Download a training run's evaluation artefacts into `target`; the folder to `read`.

    None if the run was not evaluated (trained with --no-evaluate).
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    for folder in ARTEFACT_FOLDERS:
        listed = [info.path for info in client.list_artifacts(run_id, folder or None)]
        document = f"{folder}/{DOCUMENT}" if folder else DOCUMENT
        if document not in listed:
            continue
        plots = [p for p in listed if RELIABILITY.fullmatch(p.rsplit("/", 1)[-1])]
        for path in [document, *plots]:
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=str(target), tracking_uri=tracking_uri
            )
        return Path(target)  # a single file downloads to dst_path/<its name>
    return None


def load_walk_forward(run_id: str, tracking_uri: str | None = None) -> WalkForward | None:
    """A training run's evaluation artefacts, in memory; None if the run was not evaluated."""
    with tempfile.TemporaryDirectory(prefix="flushcast-evaluation-") as tmp:
        folder = download_walk_forward(run_id, tmp, tracking_uri)
        return WalkForward.read(folder) if folder else None


def label_text(spec: LabelSpec) -> str:
    """The flush definition in words, with this model's parameters."""
    days = spec.median_window_hours / 24
    move = (
        f"and price moves at least {spec.k:g} σ·√H away from the close at some point in that "
        f"window (σ: the standard deviation of bar returns over the past "
        f"{spec.vol_window_hours / 24:g} days)"
    )
    if spec.source == "oi_drop":
        return (
            "A flush within H hours means (open-interest proxy, for data without liquidations): "
            f"open interest falls within the next H hours by at least {spec.m:g} × the median "
            f"of such H-hour falls over the past {days:g} days, {move}. Its direction is the "
            "price move."
        )
    amount = (
        "the liquidations (longs plus shorts) of the next H hours, as a share of open interest,"
        if spec.scale == "oi"
        else "the liquidations (longs plus shorts, USD) of the next H hours"
    )
    if spec.threshold == "quantile":
        spike = (
            f"exceed the {spec.quantile:.0%} quantile of H-hour totals over the past {days:g} days"
        )
    else:
        multiple = (
            f"{spec.m:g} × (H / 4 h)^-{spec.m_decay:g} (4 h: {spec.m_for(4):.2g}, 24 h: "
            f"{spec.m_for(24):.2g})"
            if spec.m_decay
            else f"{spec.m:g}"
        )
        spike = (
            f"reach at least {multiple} × the median of H-hour totals over the past {days:g} days"
        )
    floor = (
        f", and at least {spec.floor_usd:,.0f} USD"
        if spec.floor_usd and spec.scale == "usd"
        else ""
    )
    return (
        f"A flush within H hours (label {spec.name}) means: {amount} {spike}{floor}, {move}. "
        "Its direction is the side mostly liquidated and matching the price move: a long flush "
        "(price down) or a short squeeze (price up)."
    )


def _span(first: str | None, last: str | None) -> str:
    if first is None or last is None:
        return "not recorded"
    return f"{when(first)} → {when(last)}"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def metrics_tables(record: EvaluationRecord) -> list[dict[str, Any]]:
    """Per horizon: the walk-forward metrics of the champion beside every model (template rows)."""
    tables = []
    for h, entry in sorted(record.horizons.items()):
        rows = [
            {"model": model, "cells": [_fmt(getattr(values, m)) for m in METRICS]}
            for model, values in entry.models.items()
        ]
        interval = entry.intervals.get("edge_over_best_baseline")
        tables.append(
            {
                "horizon": h,
                "base_rate": entry.base_rate,
                "n_test": entry.n_test,
                "n_events": entry.n_events,
                "n_folds": entry.n_folds,
                "best_baseline": entry.best_baseline,
                "edge": entry.edge_over_best_baseline,
                "interval": interval if interval and None not in interval else None,
                "direction_accuracy": entry.metric("champion", "direction_accuracy"),
                "direction_rules": ", ".join(
                    f"{name} {_fmt(value)}"
                    for name, value in entry.direction.accuracy.items()
                    if name not in ("call", "model")
                )
                if entry.direction
                else "",
                "direction_made_of": made_of(entry.direction.made_of) if entry.direction else "",
                "made_of": champion_made_of(entry.champion_shares, entry.champion_choices),
                "rows": rows,
            }
        )
    return tables


def summary_tables(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The bundle's compact walk-forward summary: the champion and the best baseline's PR-AUC."""
    return [
        {
            "horizon": int(key),
            "base_rate": entry["base_rate"],
            "rows": [
                {
                    "model": "champion",
                    "cells": [_fmt(entry.get(m)) if m in SUMMARY_METRICS else "–" for m in METRICS],
                },
                {
                    "model": f"best baseline ({entry.get('best_baseline') or '–'})",
                    "cells": [_fmt(entry.get("best_baseline_pr_auc"))] + ["–"] * (len(METRICS) - 1),
                },
            ],
        }
        for key, entry in sorted(summary.get("horizons", {}).items(), key=lambda kv: int(kv[0]))
    ]


def simulated(bundle: Bundle) -> bool:
    """Whether a series the model was tested on came from the built-in simulator (simulated
    history that only trained, before a vendor's store, does not make it a demonstration:
    `augmented` says so)."""
    series = bundle.training.get("series", {})
    return any(
        str(info.get("sources", {}).get("source", "")).startswith("flushcast simulator")
        for info in series.values()
        if info.get("tested") is not False
    )


def augmented(bundle: Bundle) -> str | None:
    """The sentence saying that simulated history trained the model beside its own data (None:
    none was added; `training.augment`)."""
    added = bundle.training.get("augmented")
    if not added:
        return None
    return (
        f"Besides its own data this model learned from {added['days']} days of simulated "
        f"history ({', '.join(added['symbols'])}, seed {added['seed']}) placed before its first "
        f"bar; it was tested on its own data only."
    )


def model_card(
    bundle: Bundle, identity: dict[str, Any] | None, walk_forward: WalkForward | None
) -> dict:
    """Everything the model card section shows, ready for the template (`identity` None: a
    model fitted in this session, not registered)."""
    series = bundle.training.get("series", {})
    card: dict[str, Any] = {
        "identity": identity,
        "span": _span(bundle.training.get("data_start"), bundle.training.get("data_end")),
        "series": [
            {
                "name": name,
                "span": _span(info.get("first"), info.get("last")),
                "rows": info.get("rows"),
            }
            for name, info in series.items()
        ],
        "label": label_text(LabelSpec.from_params(bundle.label)),
        "simulated": simulated(bundle),
        "augmented": augmented(bundle),
        "metric_names": list(METRICS.values()),
        "reliability": {},
    }
    if walk_forward is not None:
        card["tables"] = metrics_tables(walk_forward.record)
        card["reliability"] = {h: png_uri(p) for h, p in sorted(walk_forward.reliability.items())}
        card["complete"] = True
    else:
        card["tables"] = summary_tables(bundle.evaluation)
        card["complete"] = False
    return card
