"""Simulated history for a short store: the built-in simulator's market before its first bar.

A store of months of one vendor holds a handful of flush episodes; the simulator holds as many
as it is asked for, and its cascades come from the mechanism the features describe (leverage
building up, crowding, hot funding). Placed so that its last bar opens before the tested
stores' first bar, it only lengthens every fold's training span: the walk-forward's folds and
test rows stay the store's own (`training.splits`: folds start `min_train_hours` after the
first tested bar), and a simulated row is never tested, so it never enters a calibrator's
evidence either (that is out-of-fold rows, which are tested rows). What it does move is the
prior (the training base rate the calibrators are shifted to), which includes its rows.

Its bars carry the calendar of the dates they are placed on, and the simulator's own clock
effects (thinner books at night and at weekends, funding at 00, 08 and 16 UTC) sit on them, so
the clock family is meaningful there; the scheduled-events calendar is not (the simulator has
no FOMC), which is one reason that family stays off by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from flushcast.marketdata.schema import bar_name
from flushcast.training.config import AugmentConfig

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class SimulatedHistory:
    """What was added: the frame (venue `sim`), its provenance per series and why."""

    frame: pd.DataFrame
    provenance: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    """Recorded with the run (`meta.augmented`) and the bundle: days, span, seed, symbols,
    bar, and the tested span that made the history apply."""


def describe(summary: dict[str, Any]) -> str:
    """What was added, in one line (the command's output; `summary` as recorded)."""
    return (
        f"added simulated history (training only, never tested): {len(summary['symbols'])} "
        f"series x {summary['days']} days of {summary['bar']} bars, {summary['start'][:10]} to "
        f"{summary['end'][:10]} (seed {summary['seed']}), before the tested data's first bar: "
        f"it spans {summary['tested_days']:.0f} days, under "
        f"augment.when_shorter_than_days={summary['when_shorter_than_days']}"
    )


def applies(
    tested: Sequence[pd.DataFrame],
    bar: pd.Timedelta,
    setting: AugmentConfig,
    others: Sequence[pd.DataFrame] = (),
) -> float | None:
    """The tested stores' span in days when simulated history should be added, else None:
    it is switched off, the store is long enough, the simulator has no such bar, or simulated
    series are already there (tested: synthetic data needs no synthetic past; in `others`, the
    training-only stores: the user brought their own)."""
    from flushcast.simulator import BARS, VENUE  # on first use: the simulator's import is slow

    frames = [f for f in tested if not f.empty]
    if setting.simulated_days == 0 or not frames or bar_name(bar) not in BARS:
        return None
    if any((f["venue"].astype(str) == VENUE).any() for f in [*frames, *others] if not f.empty):
        return None
    first = min(f["timestamp"].min() for f in frames)
    last = max(f["timestamp"].max() for f in frames)
    days = (last + bar - first) / DAY
    return days if days < setting.when_shorter_than_days else None


def simulated_history(
    tested: Sequence[pd.DataFrame],
    bar: pd.Timedelta,
    setting: AugmentConfig,
    others: Sequence[pd.DataFrame] = (),
) -> SimulatedHistory | None:
    """`setting.simulated_days` of simulated bars of size `bar`, the last one opening before
    the first bar of `tested` (None: `applies` says no). Where it is placed depends on that
    first bar alone, and what is simulated on the setting alone: nothing of the store's later
    bars reaches it."""
    span = applies(tested, bar, setting, others)
    if span is None:
        return None
    from flushcast.simulator import VENUE, simulate

    first = min(f["timestamp"].min() for f in tested if not f.empty)
    end = first.floor("D")
    start = end - setting.simulated_days * DAY
    result = simulate(
        setting.preset,
        list(setting.symbols),
        days=setting.simulated_days,
        seed=setting.seed,
        start=start,
        bar=bar_name(bar),
    )
    provenance = {
        f"{symbol}@{VENUE}": {
            "source": "flushcast simulator (augment: simulated history before the store)",
            "seed": setting.seed,
            "preset": setting.preset,
            "bar": bar_name(bar),
        }
        for symbol in result.frame["symbol"].astype(str).unique()
    }
    summary = {
        "days": setting.simulated_days,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "seed": setting.seed,
        "preset": setting.preset,
        "symbols": list(setting.symbols),
        "bar": bar_name(bar),
        "tested_first": first.isoformat(),
        "tested_days": round(span, 2),
        "when_shorter_than_days": setting.when_shorter_than_days,
    }
    return SimulatedHistory(result.frame, provenance, summary)
