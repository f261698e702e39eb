"""The best possible flush forecast on the simulator: oracle probabilities from the true state.

    python -m benchmarks.oracle_bound [--days 365] [--seed 7] [--starts 300] [--paths 24]

At each of `--starts` sampled hours the simulated market is paused at the bar's close, its whole
engine state is copied, and `--paths` continuations of the longest horizon are run with fresh
randomness. The flush label of each continued path (`training.labels.make_labels` with a
`LabelSpec`, so any label definition can be bounded), computed with the real history before it,
gives the oracle probability: the share of futures the true state allows that are flushes. No
forecaster can rank better on average; finite `--paths` makes the figures a slight underestimate.

Scored against the realised labels, overall and in calm hours (no logged cascade of the symbol
in the last 24 h), twice: from the true state, and "without build-up", where each continuation
starts from a state whose build-up (leveraged positions and stops, crowding, funding, how long
volatility has been compressed) is another hour's (`Market.with_buildup_from`), so only price,
volatility, depth and the clock are known. The layering stays one way: `simulator` knows
nothing of `training`; this module imports both.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from flushcast.common.engine import Engine, engine
from flushcast.simulator.config import ScenarioConfig
from flushcast.simulator.drivers import draw
from flushcast.simulator.market import Market
from flushcast.simulator.simulate import DEFAULT_SYMBOLS, hourly_values, simulate
from flushcast.training.labels import LabelSpec, flush_column, make_labels

MODES = ("oracle", "no_buildup")
CALM_HOURS = 24
"""A start hour is calm when the symbol logged no cascade in the hours up to this many before."""
DONOR_GAP_HOURS = 48
"""Build-up donors are at least this far from the start hour (no future build-up leaks in)."""
LABEL_VALUES = ("open", "high", "low", "close", "oi_usd", "liq_long_usd", "liq_short_usd")
"""The bar values a label may read (both label sources)."""


@dataclass(frozen=True)
class BoundSpec:
    """What to bound: the market, the label, and how many starts and paths to sample."""

    config: ScenarioConfig
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    days: int = 365
    seed: int = 7
    starts: int = 300
    paths: int = 16
    event_share: float = 0.5
    donors: int = 32
    label: LabelSpec = field(default_factory=LabelSpec)

    @property
    def hours(self) -> int:
        return self.days * 24

    @property
    def horizon(self) -> int:
        return max(self.label.horizons)

    def history(self) -> int:
        """Bars before a start the label needs: trailing sums of the median window, σ window."""
        label = self.label
        return max(label.median_window_hours + self.horizon, label.vol_window_hours + 1) + 1

    def donor_hours(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 99])
        first = min(24 * 14, self.hours // 4)
        return np.sort(rng.choice(np.arange(first, self.hours - 1), self.donors, replace=False))


@dataclass(frozen=True)
class Realised:
    """The realised market's labels, long: `hour, symbol, horizon, y, calm`."""

    labels: pd.DataFrame
    frame: pd.DataFrame


def realised(spec: BoundSpec) -> Realised:
    """Realised labels per (hour, symbol, horizon) and whether the hour was calm."""
    result = simulate(spec.config, spec.symbols, spec.days, spec.seed)
    labels = make_labels(result.frame, spec.label)
    t0 = result.frame["timestamp"].min()
    labels["hour"] = ((labels["timestamp"] - t0) // pd.Timedelta("1h")).astype(int)
    labels["symbol"] = labels["symbol"].astype(str)
    labels["calm"] = True
    for c in result.cascades.itertuples():
        # Bars whose last CALM_HOURS hours (up to their close) saw this cascade start.
        first = int((c.start.floor("1h") - t0) / pd.Timedelta("1h"))
        hit = (labels["symbol"] == c.symbol) & labels["hour"].between(first, first + CALM_HOURS - 1)
        labels.loc[hit, "calm"] = False
    long = labels.melt(
        id_vars=["hour", "symbol", "calm"],
        value_vars=[flush_column(h) for h in spec.label.horizons],
        var_name="horizon",
        value_name="y",
    )
    long["horizon"] = long["horizon"].str.extract(r"(\d+)").astype(int)[0]
    return Realised(labels=long, frame=result.frame)


def sample_starts(spec: BoundSpec, truth: Realised) -> pd.Series:
    """Start hours, sampled by outcome, with their inverse sampling probabilities as weights.

    Flushes are rare, so uniform starts would spend most continuations on quiet hours. Hours
    fall into strata by the longest horizon at which some symbol has a flush (or none); a share
    `event_share` of starts is spread evenly over the flush strata, the rest drawn from hours
    without one, each uniformly. ROC-AUC depends on the scores of flushes and of quiet hours
    separately, so weighting each start by 1 / its sampling probability keeps every figure an
    unbiased estimate of the all-hours one.
    """
    labelled = truth.labels.dropna(subset=["y"])
    full = labelled.groupby("hour")["y"].count() == len(spec.symbols) * len(spec.label.horizons)
    eligible = full[full].index.to_numpy()
    eligible = eligible[eligible < spec.hours - spec.horizon]
    flushes = labelled[labelled["y"] == 1].groupby("hour")["horizon"].max()
    stratum = flushes.reindex(eligible).fillna(0).to_numpy()
    horizons = sorted(spec.label.horizons, reverse=True)
    quiet = round(spec.starts * (1 - spec.event_share))
    each, extra = divmod(spec.starts - quiet, len(horizons))
    counts = {0: quiet} | {h: each + (i < extra) for i, h in enumerate(horizons)}
    rng = np.random.default_rng([spec.seed, 5])
    weights = {}
    for value, count in counts.items():
        pool = eligible[stratum == value]
        n = min(len(pool), count)
        if n:
            chosen = rng.choice(pool, n, replace=False)
            weights |= dict.fromkeys(chosen.tolist(), len(pool) / n)
    return pd.Series(weights).sort_index()


def _continuations(spec: BoundSpec, starts: np.ndarray) -> dict:
    """Per (mode, start) the continued hourly bars of every symbol, one dict per path."""
    donors: list[tuple[int, Market]] = []
    simulate(
        spec.config,
        spec.symbols,
        spec.days,
        spec.seed,
        pause_at=spec.donor_hours(),
        on_pause=lambda t, market: donors.append((t, market.copy())),
    )
    paths: dict[tuple[str, int], list[dict]] = {}

    def at_start(t: int, market: Market) -> None:
        rng = np.random.default_rng([spec.seed, 7, t])
        usable = [m for h, m in donors if abs(h - t) >= DONOR_GAP_HOURS]
        for mode in MODES:
            runs = []
            for k in range(spec.paths):
                if mode == "oracle":
                    path = market.copy()
                else:
                    path = market.with_buildup_from(usable[rng.integers(len(usable))])
                key = (MODES.index(mode) + 1, t, k)
                fresh = {s: draw(spec.seed, s, spec.horizon, *key) for s in path.order}
                runs.append({s: c.hourly for s, c in path.advance(fresh).items()})
            paths[(mode, t)] = runs

    simulate(spec.config, spec.symbols, spec.days, spec.seed, pause_at=starts, on_pause=at_start)
    return paths


def continued_labels(
    history: pd.DataFrame, futures: np.ndarray, names: list[str], label: LabelSpec
) -> pd.DataFrame:
    """The label at the last bar of `history` for each continued future (rows: `names`).

    `history` is one series up to and including the start bar, with the columns of
    `LABEL_VALUES`; `futures[i]` holds the values of future i's bars after it, in that order.
    The label sees the real history (trailing thresholds, σ) and the future.
    """
    n, horizon, _ = futures.shape
    at = history["timestamp"].iloc[-1]
    stamps = np.concatenate(
        [history["timestamp"].to_numpy(), pd.date_range(at, periods=horizon + 1, freq="1h")[1:]]
    )
    past = history[list(LABEL_VALUES)].to_numpy(dtype="float64")
    values = np.concatenate([np.broadcast_to(past, (n, *past.shape)), futures], axis=1)
    length = len(stamps)
    both = pd.DataFrame(values.reshape(n * length, -1), columns=list(LABEL_VALUES))
    both.insert(0, "timestamp", np.tile(stamps, n))
    both.insert(1, "symbol", pd.Categorical.from_codes(np.repeat(np.arange(n), length), names))
    both.insert(2, "venue", "sim")
    labels = make_labels(both, label)
    row = labels[labels["timestamp"] == at].set_index("symbol")
    return row[[flush_column(h) for h in label.horizons]].rename(index=str)


def _oracle_part(spec: BoundSpec, starts: np.ndarray, frame: pd.DataFrame) -> pd.DataFrame:
    """Oracle probabilities per (start, symbol, mode) for some of the starts (a worker's share)."""
    paths = _continuations(spec, starts)
    series = {s: g.reset_index(drop=True) for s, g in frame.groupby("symbol", observed=True)}
    names = [f"{mode}|{k}" for mode in MODES for k in range(spec.paths)]
    rows = []
    for t in starts:
        for symbol, bars in series.items():
            history = bars.iloc[max(0, t - spec.history() + 1) : t + 1]
            futures = np.stack(
                [
                    np.column_stack([hourly_values(run[symbol])[c] for c in LABEL_VALUES])
                    for mode in MODES
                    for run in paths[(mode, t)]
                ]
            )
            labels = continued_labels(history, futures, names, spec.label)
            labels.index = labels.index.str.split("|").str[0]
            for h in spec.label.horizons:
                for mode, p in labels[flush_column(h)].groupby(level=0).mean().items():
                    rows.append({"hour": t, "symbol": symbol, "mode": mode, "horizon": h, "p": p})
    return pd.DataFrame(rows)


def oracle_probabilities(
    spec: BoundSpec, starts: np.ndarray, frame: pd.DataFrame, runner: Engine
) -> pd.DataFrame:
    """Columns `hour, symbol, mode, horizon, p`: oracle probabilities at the given starts,
    one share of the starts per worker of `runner`."""
    shares = [starts[i :: runner.workers] for i in range(runner.workers)]
    shared = runner.share(frame)
    parts = runner.run(_oracle_part, [(spec, share, shared) for share in shares])
    return pd.concat(parts, ignore_index=True)


def _weighted(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """(ROC-AUC, lift = average precision / base rate), each row weighted."""
    if not 0 < y.sum() < len(y):
        return float("nan"), float("nan")
    base = np.average(y, weights=w)
    return (
        float(roc_auc_score(y, p, sample_weight=w)),
        float(average_precision_score(y, p, sample_weight=w) / base),
    )


def _interval(part: pd.DataFrame, n_boot: int, seed: int) -> tuple[float, float]:
    """95 % interval of the weighted ROC-AUC, resampling whole days of starts (flushes last
    hours, so neighbouring starts are not independent)."""
    rng = np.random.default_rng(seed)
    days = part["hour"].to_numpy() // 24
    blocks = [np.flatnonzero(days == d) for d in np.unique(days)]
    values = []
    for _ in range(n_boot):
        rows = np.concatenate([blocks[i] for i in rng.integers(len(blocks), size=len(blocks))])
        y, p, w = (part[c].to_numpy()[rows] for c in ("y", "p", "w"))
        values.append(_weighted(y, p, w)[0])
    lo, hi = np.nanquantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def bound_table(
    oracle: pd.DataFrame, truth: Realised, weights: pd.Series, n_boot: int = 200
) -> pd.DataFrame:
    """Weighted ROC-AUC (with a day-block bootstrap interval) and lift of each mode, per
    horizon, overall and in calm hours."""
    both = oracle.merge(truth.labels, on=["hour", "symbol", "horizon"], how="inner")
    both = both.dropna(subset=["y", "p"])
    both["w"] = both["hour"].map(weights)
    rows = []
    for (h, mode), g in both.groupby(["horizon", "mode"]):
        row = {"horizon": h, "mode": mode}
        for subset, part in (("all", g), ("calm", g[g["calm"]])):
            y, p, w = (part[c].to_numpy() for c in ("y", "p", "w"))
            roc, lift = _weighted(y, p, w)
            lo, hi = _interval(part, n_boot, seed=h) if n_boot else (np.nan, np.nan)
            row |= {
                f"{subset}_n": len(part),
                f"{subset}_events": int(y.sum()),
                f"{subset}_base_rate": float(np.average(y, weights=w)) if len(y) else np.nan,
                f"{subset}_roc": roc,
                f"{subset}_roc_lo": lo,
                f"{subset}_roc_hi": hi,
                f"{subset}_lift": lift,
            }
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """The bound table as in docs/simulator_calibration.md (ROC with its 95 % interval)."""

    def roc(row: pd.Series, subset: str) -> str:
        value, lo, hi = (row[f"{subset}_roc{k}"] for k in ("", "_lo", "_hi"))
        return f"{value:.3f} ({lo:.2f}-{hi:.2f})"

    lines = [
        "| horizon | base rate | best ROC | best lift | ROC without build-up "
        "| calm base rate | calm best ROC | calm best lift | calm ROC without build-up "
        "| sampled rows (flushes), calm rows (flushes) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for h, g in table.groupby("horizon"):
        o = g[g["mode"] == "oracle"].iloc[0]
        n = g[g["mode"] == "no_buildup"].iloc[0]
        lines.append(
            f"| {h} h | {o.all_base_rate:.1%} | {roc(o, 'all')} | {o.all_lift:.2f} "
            f"| {roc(n, 'all')} | {o.calm_base_rate:.1%} | {roc(o, 'calm')} | {o.calm_lift:.2f} "
            f"| {roc(n, 'calm')} | {o.all_n} ({o.all_events}), {o.calm_n} ({o.calm_events}) |"
        )
    return "\n".join(lines)


def bound(spec: BoundSpec, runner: Engine) -> pd.DataFrame:
    """The bound table of `spec` (see the module docstring)."""
    truth = realised(spec)
    weights = sample_starts(spec, truth)
    oracle = oracle_probabilities(spec, weights.index.to_numpy(), truth.frame, runner)
    return bound_table(oracle, truth, weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS))
    parser.add_argument("--starts", type=int, default=300)
    parser.add_argument("--paths", type=int, default=16)
    parser.add_argument("--cluster", help="as `flushcast evaluate --cluster` (default: local)")
    args = parser.parse_args()
    spec = BoundSpec(
        config=ScenarioConfig.preset(args.preset),
        symbols=tuple(args.symbols.split(",")),
        days=args.days,
        seed=args.seed,
        starts=args.starts,
        paths=args.paths,
    )
    began = time.perf_counter()
    runner = engine(args.cluster)
    table = bound(spec, runner)
    print(markdown(table))
    print(
        f"oracle bound: {spec.starts} start hours x {len(spec.symbols)} symbols x "
        f"{spec.paths} paths x 2 modes in {time.perf_counter() - began:.0f} s "
        f"({runner.workers} workers)",
        flush=True,
    )


if __name__ == "__main__":
    main()
