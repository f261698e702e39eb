"""The training table: features and labels of a store, joined row by row, plus where it came from.

Features come from `features.build_features` (the same code the service runs) and labels from
`training.labels.make_labels`; the two are computed separately from the same market frame and
only joined here, so no feature can see a label. The data span and sources of every series are
recorded with each run.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flushcast.common.errors import DataError
from flushcast.features.build import build_features
from flushcast.features.registry import FEATURES, names_at, without_families
from flushcast.marketdata.schema import BAR, KEY_COLUMNS, conform
from flushcast.marketdata.store import MarketStore
from flushcast.models.matrix import BAR_HOURS
from flushcast.training.augment import simulated_history
from flushcast.training.labels import (
    LabelSpec,
    bar_text,
    direction_column,
    flush_column,
    make_labels,
    move_columns,
)

if TYPE_CHECKING:
    from flushcast.common.engine import Engine
    from flushcast.training.config import AugmentConfig, TrainingConfig

KEYS = list(KEY_COLUMNS)
BAR_FEATURE = BAR_HOURS
"""A model input beside the registry features when stores of several bar sizes train one model:
each row's bar size in hours (features are in hours already; this tells the model which bar
a row's returns and counts were measured on)."""


@dataclass
class Dataset:
    """Feature and label columns for every bar of the chosen series (labels NaN if unknown)."""

    table: pd.DataFrame
    features: list[str]
    label: LabelSpec
    series: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per `SYMBOL@VENUE`: first and last bar, rows, sources of each column."""
    bar: pd.Timedelta = BAR
    """The bar size of the tested series (a model is served at one bar size)."""
    grid: pd.Timedelta | None = None
    """The finest bar of every series, training-only stores included (the walk-forward's time
    grid); None: `bar`."""
    augmented: dict[str, Any] | None = None
    """The simulated history added before the tested stores (`training.augment`), else None."""

    @property
    def split_bar(self) -> pd.Timedelta:
        """The time grid the folds are laid on: the finest bar size of any row."""
        return self.grid if self.grid is not None else self.bar

    def tested(self, rows: pd.DataFrame) -> np.ndarray:
        """Whether the walk-forward scores each of `rows` (series of training-only stores
        are learned from, never tested)."""
        keys = rows["symbol"].astype(str) + "@" + rows["venue"].astype(str)
        excluded = [k for k, info in self.series.items() if info.get("tested") is False]
        return ~keys.isin(excluded).to_numpy()

    def symbols(self) -> list[str]:
        """The symbol categories a model trained here knows, sorted."""
        return sorted(self.table["symbol"].astype(str).unique())

    def labelled(self, horizon: int) -> pd.DataFrame:
        """Rows with a known flush label at `horizon`, in time order (symbols interleaved).

        The order comes from the keys alone and the rows are copied once (filtering, then
        sorting the whole table, copied it twice: a large store's peak)."""
        return self.table.take(self.labelled_rows(horizon)).reset_index(drop=True)

    def labelled_rows(self, horizon: int) -> np.ndarray:
        """The positions in `table` of `labelled(horizon)`'s rows, in its order (taking only
        the columns a reader needs from them copies no other column)."""
        kept = np.flatnonzero(self.table[flush_column(horizon)].notna().to_numpy())
        keys = self.table[KEYS].take(kept).reset_index(drop=True)
        order = keys.sort_values(["timestamp", "symbol", "venue"], kind="stable").index
        return kept[order.to_numpy()]

    def fingerprint(self, config: TrainingConfig | None = None) -> str:
        """Identifies the data, label and splits an evaluation ran on; equal means comparable."""
        payload: dict[str, Any] = {
            "series": self.series,
            "label": self.label.to_params(),
            "bar": bar_text(self.bar),
        }
        if config is not None:
            payload["walk_forward"] = config.walk_forward.model_dump()
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def meta(self, config: TrainingConfig) -> dict[str, Any]:
        """How an evaluation on this dataset was made (the record's `meta`)."""
        return {
            "fingerprint": self.fingerprint(config),
            "code_version": code_version(),
            "series": self.series,
            **self.span(),
            "bar": bar_text(self.bar),
            "label": self.label.to_params(),
            "config": config.flat(),
            "candidates": list(config.fit.candidates),
            "baselines": list(config.evaluation.baselines),
            "augmented": self.augmented,
        }

    def span(self) -> dict[str, str]:
        """First and last bar over all series (for run parameters)."""
        stamps = self.table["timestamp"]
        return {"data_start": stamps.min().isoformat(), "data_end": stamps.max().isoformat()}


def make_dataset(
    frame: pd.DataFrame,
    label: LabelSpec | None = None,
    provenance: dict[str, dict] | None = None,
    *,
    bar: pd.Timedelta = BAR,
    tested: Sequence[str] | None = None,
    show_progress: bool = False,
    runner: Engine | None = None,
) -> Dataset:
    """Features and labels of a canonical market frame of `bar`-sized bars (each series' features
    a task on `runner`; default: in this process).

    `tested` names the series (`SYMBOL@VENUE`) the walk-forward scores; the others only
    train (None: every series is tested).
    """
    label = label or LabelSpec()
    if frame.empty:
        raise DataError("no market data to train on (the store is empty or no symbol matched)")
    labels = make_labels(frame, label, bar=bar)
    features = build_features(frame, bar=bar, show_progress=show_progress, runner=runner)
    label_cols = [
        c for h in label.horizons for c in (flush_column(h), direction_column(h), *move_columns(h))
    ]
    table = join_labels(features, labels[KEYS + label_cols])
    series = {}
    for (symbol, venue), part in table.groupby(["symbol", "venue"], observed=True):
        key = f"{symbol}@{venue}"
        series[key] = {
            "first": part["timestamp"].min().isoformat(),
            "last": part["timestamp"].max().isoformat(),
            "rows": len(part),
            "sources": (provenance or {}).get(key, {}),
        }
    if tested is not None:
        unknown = sorted(set(tested) - set(series))
        if unknown or not tested:
            raise DataError(f"no data for the tested series {unknown}", column="store")
        for key in series:
            series[key]["tested"] = key in tested
    return Dataset(table=table, features=names_at(bar), label=label, series=series, bar=bar)


def join_labels(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """`features` with the label columns of `labels` (keys, then labels) added, matched on the
    keys (NaN where a row has no label): only the keys are merged, and the label columns
    added to the feature table itself, so the feature values are never copied (merging the
    whole table copied it twice: a large store's peak)."""
    as_text = {"symbol": "str", "venue": "str"}
    keys = features[KEYS].astype(as_text)
    joined = keys.merge(labels.astype(as_text), on=KEYS, how="left", validate="one_to_one")
    for column in labels.columns.drop(KEYS):
        features[column] = joined[column].array
    features["symbol"] = keys["symbol"].astype("category")
    features["venue"] = keys["venue"].astype("category")
    return features


def _read_store(
    store: str | Path, symbols: Sequence[str] | None
) -> tuple[pd.DataFrame, dict[str, dict], pd.Timedelta | None]:
    """One store's chosen series, their provenance and their (one) bar size (None: the store
    has none of the chosen symbols)."""
    market = MarketStore(store)
    datasets = market.datasets()
    if not datasets:
        raise DataError(f"no market data in store {store}: ingest or simulate first")
    known = {d.symbol for d in datasets}
    chosen = [s for s in symbols if s in known] if symbols else None
    if symbols and not chosen:
        return pd.DataFrame(), {}, None
    frame = market.read(chosen)
    provenance = {
        f"{d.symbol}@{d.venue}": market.provenance(d.symbol, d.venue)
        for d in datasets
        if not chosen or d.symbol in chosen
    }
    return frame, provenance, market.common_bar(chosen)


def load_dataset(
    stores: str | Path | Sequence[str | Path],
    symbols: Sequence[str] | None = None,
    label: LabelSpec | None = None,
    *,
    train_stores: Sequence[str | Path] = (),
    augment: AugmentConfig | None = None,
    show_progress: bool = False,
    runner: Engine | None = None,
) -> Dataset:
    """Every chosen series of `stores` (pooled; symbol and venue kept apart), sources recorded.

    Series of `train_stores` only train: the walk-forward tests on `stores` alone, so a model
    learned on years of one vendor is judged on another's data. The tested stores share one bar
    size, and a series (symbol on a venue) may come from one store only. `augment` adds
    simulated history before a short store's first bar, training only (`training.augment`).
    """
    tested_stores = [stores] if isinstance(stores, str | Path) else list(stores)
    every = [*tested_stores, *train_stores]
    loaded = [(store, *_read_store(store, symbols)) for store in every]
    loaded = [entry for entry in loaded if entry[3] is not None]
    if not loaded:
        raise DataError(
            f"symbol(s) {sorted(symbols or [])} in none of the stores {[str(s) for s in every]}",
            column="symbol",
        )
    bars = {str(store): bar for store, _, _, bar in loaded}
    tested_bars = {bar for store, bar in bars.items() if store in map(str, tested_stores)}
    if len(tested_bars) > 1:
        listing = ", ".join(f"{store}: {bar_text(bar)}" for store, bar in bars.items())
        raise DataError(
            f"the tested stores have different bar sizes ({listing}): test one bar size at a "
            "time, and add the others with --train-store",
            column="store",
        )
    frames, provenance, owner = [], {}, {}
    for store, frame, sources, _ in loaded:
        for key in sources:
            if key in owner:
                raise DataError(
                    f"series {key} is in two stores ({owner[key]} and {store}): pool stores of "
                    "different series, or ingest the sources into one store",
                    column="store",
                )
            owner[key] = str(store)
        frames.append(frame)
        provenance.update(sources)
    if symbols:
        unknown = sorted(set(symbols) - {k.split("@")[0] for k in owner})
        if unknown:
            raise DataError(f"symbol(s) {unknown} in none of the stores", column="symbol")
    tested = [k for k, store in owner.items() if store in map(str, tested_stores)]
    if not tested_bars:
        raise DataError(
            f"symbol(s) {sorted(symbols or [])} in none of the tested stores "
            f"{[str(s) for s in tested_stores]} (only in training stores)",
            column="symbol",
        )
    tested_bar = next(iter(tested_bars))
    history = None
    if augment is not None:
        is_tested = [str(store) in map(str, tested_stores) for store, *_ in loaded]
        history = simulated_history(
            [entry[1] for entry, t in zip(loaded, is_tested, strict=True) if t],
            tested_bar,
            augment,
            others=[entry[1] for entry, t in zip(loaded, is_tested, strict=True) if not t],
        )
    if history is not None:
        loaded.append(("simulated history", history.frame, history.provenance, tested_bar))
        frames.append(history.frame)
        provenance.update(history.provenance)
    if len(set(bar for *_, bar in loaded)) == 1:
        dataset = make_dataset(
            conform(pd.concat(frames, ignore_index=True)),
            label,
            provenance,
            bar=tested_bar,
            tested=tested if train_stores or history is not None else None,
            show_progress=show_progress,
            runner=runner,
        )
    else:
        by_bar: dict[pd.Timedelta, list[pd.DataFrame]] = {}
        for _, frame, _, bar in loaded:
            by_bar.setdefault(bar, []).append(frame)
        parts = [
            _at_bar(
                conform(pd.concat(group, ignore_index=True)), bar, label, provenance, tested, runner
            )
            for bar, group in sorted(by_bar.items())
        ]
        dataset = mixed(parts, tested_bar)
    dataset.augmented = history.summary if history is not None else None
    return dataset


def _at_bar(
    frame: pd.DataFrame,
    bar: pd.Timedelta,
    label: LabelSpec | None,
    provenance: dict[str, dict],
    tested: Sequence[str],
    runner: Engine | None = None,
) -> Dataset:
    """One bar size's series: features and labels at their own bar (horizons in hours; a
    horizon that is not a whole number of these bars is left unlabelled here)."""
    label = label or LabelSpec()
    whole = tuple(h for h in label.horizons if pd.Timedelta(hours=h) % bar == pd.Timedelta(0))
    if not whole:
        raise DataError(
            f"no horizon of {list(label.horizons)} h is a whole number of {bar_text(bar)} bars",
            column="store",
        )
    own = label.model_copy(update={"horizons": whole})
    data = make_dataset(frame, own, provenance, bar=bar, runner=runner)
    for key, info in data.series.items():
        info["tested"] = key in tested
    for h in label.horizons:
        if h not in whole:
            data.table[flush_column(h)] = np.nan
            data.table[direction_column(h)] = None
            side, ratio = move_columns(h)
            data.table[side], data.table[ratio] = None, np.nan
    data.label = label
    return data


def mixed(parts: Sequence[Dataset], bar: pd.Timedelta) -> Dataset:
    """One dataset from datasets of several bar sizes: tables stacked with the `bar_hours`
    input, tested at `bar`, folds laid on the finest bar."""
    tables = []
    for part in parts:
        table = part.table.copy()
        table.insert(3 + len(FEATURES), BAR_FEATURE, part.bar / pd.Timedelta(hours=1))
        for key in ("symbol", "venue"):
            table[key] = table[key].astype(str)
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    for key in ("symbol", "venue"):
        table[key] = table[key].astype("category")
    series = {}
    for part in parts:
        for key, info in part.series.items():
            series[key] = {**info, "bar": bar_text(part.bar)}
    # The features of the bar it is tested (and served) at: one missing there is never known.
    tested = next(part.features for part in parts if part.bar == bar)
    return Dataset(
        table=table,
        features=[*tested, BAR_FEATURE],
        label=parts[0].label,
        series=series,
        bar=bar,
        grid=min(part.bar for part in parts),
    )


def select_features(dataset: Dataset, config: TrainingConfig) -> Dataset:
    """`dataset` learning only from the configuration's feature families (in place)."""
    dataset.features = without_families(config.features.exclude_families, dataset.features)
    return dataset


def require_enough(dataset: Dataset, horizon: int, min_hours: int, min_events: int = 10) -> None:
    """Refuse, with numbers, a horizon that has too few labelled hours or flushes to learn from."""
    rows = dataset.labelled(horizon)
    hours = rows["timestamp"].nunique() * (dataset.split_bar / pd.Timedelta(hours=1))
    events = int(np.nansum(rows[flush_column(horizon)]))
    if hours < min_hours or events < min_events:
        label = dataset.label
        history = max(label.min_trailing_hours, label.vol_window_hours) + horizon
        raise DataError(
            f"too little data for H={horizon}: {hours:g} labelled hours with {events} flushes; "
            f"need at least {min_hours} h and {min_events} flushes "
            f"(labels need {history} h of history first)",
            column=flush_column(horizon),
        )


def feature_lookbacks(features: Sequence[str]) -> dict[str, int]:
    """Registry lookback (1-hour bars) of each model feature, recorded in the bundle (the bar
    size input looks back over nothing)."""
    return {name: FEATURES[name].lookback if name in FEATURES else 0 for name in features}


def code_version() -> str:
    """The git commit of the checkout (with `-dirty` for local changes), else the version."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return metadata.version("flushcast")
