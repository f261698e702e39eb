"""Estimated liquidation heatmap: where today's open positions would be force-closed.

The model (the one public heatmap tools use, with its assumptions spelled out):

* Every rise in OI during a bar is new positions opened at that bar's close. A contract has a
  long and a short side, so the increase is added once to longs and once to shorts.
* Each side is split over a leverage mix (`HeatmapConfig`, default below). A position opened at
  price p with leverage L is liquidated about `1/L - maintenance_margin` away: longs below p,
  shorts above.
* A fall in OI closes positions proportionally at every level (we cannot tell which closed).
* Price trading through a level liquidates it: a bar's low clears long levels at or above it,
  its high clears short levels at or below it.
* Positions older than `max_age_hours` are forgotten, which bounds the lookback so the live
  endpoint reproduces batch values from a finite window.

Levels are bins of equal width in log price, numbered from price 1 (bin k covers
[(1+b)^k, (1+b)^(k+1)) for bin width b), so the grid does not depend on the data's range.
A bar is processed in this order: forget positions that reached max age, clear levels the bar's
range crossed, scale by the OI fall, add the OI rise at the close, then read features. Gap bars
(no row) change nothing but the clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from flushcast.common.errors import DataError
from flushcast.features.grid import SeriesGrid, to_grid
from flushcast.features.spec import Feature, bars
from flushcast.marketdata.schema import BAR

FAMILY = "heatmap"
BANDS_PCT = (1, 2, 5)


@dataclass(frozen=True)
class HeatmapConfig:
    """Assumptions of the estimated heatmap.

    Default leverage mix: 5x 10 %, 10x 30 %, 20x 25 %, 25x 15 %, 50x 12 %, 100x 8 % of new
    notional, maintenance margin 0.5 % (Binance's first tier for BTC/ETH). It is a judgement
    call in the spirit of public heatmaps (most retail notional at 10-25x, a thin tail of
    50-100x), not a measurement; the weights are distinct so tiers never tie.
    """

    leverage: tuple[float, ...] = (5.0, 10.0, 20.0, 25.0, 50.0, 100.0)
    weights: tuple[float, ...] = (0.10, 0.30, 0.25, 0.15, 0.12, 0.08)
    maintenance_margin: float = 0.005
    bin_pct: float = 0.25
    """Width of one price level, percent of price."""
    max_age_hours: float = 720.0
    cluster_range_pct: float = 20.0
    """How far from price to look for the densest cluster (covers the 5x level)."""

    def distances(self) -> np.ndarray:
        """Fractional distance from entry to liquidation price for each leverage tier."""
        if len(self.leverage) != len(self.weights) or not self.leverage:
            raise DataError("heatmap config: leverage and weights must be equally long")
        if not math.isclose(sum(self.weights), 1.0, rel_tol=1e-9) or min(self.weights) < 0:
            raise DataError("heatmap config: weights must be >= 0 and sum to 1")
        d = 1.0 / np.asarray(self.leverage, dtype="float64") - self.maintenance_margin
        if (d <= 0).any() or (d >= 1).any():
            raise DataError("heatmap config: every leverage must leave 0 < 1/L - margin < 1")
        return d

    @property
    def step(self) -> float:
        return math.log1p(self.bin_pct / 100.0)

    def lookback(self, bar: pd.Timedelta = BAR) -> int:
        return bars(self.max_age_hours, bar) + 1


DEFAULT_CONFIG = HeatmapConfig()
_IN = ("oi_usd", "high", "low", "close")
_LOOKBACK = DEFAULT_CONFIG.lookback()

SPECS: tuple[Feature, ...] = (
    *(
        Feature(
            f"heat_long_{x}pct",
            FAMILY,
            "% of OI",
            _LOOKBACK,
            f"Estimated long positions that would be liquidated if price fell {x} %, "
            "as a share of open interest.",
            _IN,
        )
        for x in BANDS_PCT
    ),
    *(
        Feature(
            f"heat_short_{x}pct",
            FAMILY,
            "% of OI",
            _LOOKBACK,
            f"Estimated short positions that would be liquidated if price rose {x} %, "
            "as a share of open interest.",
            _IN,
        )
        for x in BANDS_PCT
    ),
    Feature(
        "heat_asymmetry_5pct",
        FAMILY,
        "-1..1",
        _LOOKBACK,
        "Whether more estimated liquidations sit above (+1, shorts) or below (-1, longs) "
        "price within 5 %.",
        _IN,
    ),
    Feature(
        "heat_long_cluster_dist_pct",
        FAMILY,
        "%",
        _LOOKBACK,
        "How far below price the densest estimated cluster of long liquidations sits.",
        _IN,
    ),
    Feature(
        "heat_short_cluster_dist_pct",
        FAMILY,
        "%",
        _LOOKBACK,
        "How far above price the densest estimated cluster of short liquidations sits.",
        _IN,
    ),
)
_N_OUT = 2 * len(BANDS_PCT) + 3


@dataclass(frozen=True)
class Heatmap:
    """The estimated liquidation density on a price × time grid, for plots.

    `long_density[i, j]` is the USD notional of longs estimated to be liquidated at
    `price_levels[j]` (bin centre) as of the close of bar `timestamps[i]`; likewise for shorts.
    Gap bars carry the state of the last present bar.
    """

    price_levels: np.ndarray
    timestamps: pd.DatetimeIndex
    long_density: np.ndarray
    short_density: np.ndarray


@numba.njit(cache=True)
def _bin(price: float, step: float) -> int:
    return math.floor(math.log(price) / step)


@numba.njit(cache=True)
def _run(
    close,
    high,
    low,
    oi,
    min_low_before,
    max_high_before,
    dist,
    weights,
    step,
    kmin,
    nlev,
    max_age,
    bands,
    cluster_range,
    record,
    snap_long,
    snap_short,
    out,
):
    n = close.shape[0]
    n_bands = bands.shape[0]
    dens_l = np.zeros(nlev)
    dens_s = np.zeros(nlev)
    cohort = np.zeros(n)  # USD added per side at bar t
    cohort_log = np.zeros(n)  # cumulative log OI scale when it was added
    log_scale = 0.0  # sum of log(OI ratio) over OI falls so far
    log_ref = 0.0  # log_scale at the last renormalisation; live scale = exp(log_scale - log_ref)
    long_hi = -1  # highest level that may hold longs
    short_lo = nlev  # lowest level that may hold shorts
    for t in range(n):
        s = t - max_age
        if s >= 0 and cohort[s] > 0.0:
            # Remove cohort s unless price already cleared its level after it was opened.
            unscaled = cohort[s] * math.exp(log_ref - cohort_log[s])
            kl_min = (
                nlev + 1 if math.isnan(min_low_before[t]) else _bin(min_low_before[t], step) - kmin
            )
            kh_max = -2 if math.isnan(max_high_before[t]) else _bin(max_high_before[t], step) - kmin
            for j in range(dist.shape[0]):
                kb = _bin(close[s] * (1.0 - dist[j]), step) - kmin
                if kl_min > kb:
                    dens_l[kb] = max(dens_l[kb] - unscaled * weights[j], 0.0)
                kb = _bin(close[s] * (1.0 + dist[j]), step) - kmin
                if kh_max < kb:
                    dens_s[kb] = max(dens_s[kb] - unscaled * weights[j], 0.0)
        if not math.isnan(close[t]):
            kl = _bin(low[t], step) - kmin
            for k in range(max(kl, 0), long_hi + 1):
                dens_l[k] = 0.0
            long_hi = min(long_hi, kl - 1)
            kh = _bin(high[t], step) - kmin
            for k in range(short_lo, min(kh, nlev - 1) + 1):
                dens_s[k] = 0.0
            short_lo = max(short_lo, kh + 1)
        if t > 0 and oi[t] > 0.0 and oi[t - 1] > 0.0 and not math.isnan(close[t]):
            if oi[t] < oi[t - 1]:
                log_scale += math.log(oi[t] / oi[t - 1])
                if log_scale - log_ref < -69.0:  # keep the stored densities far from underflow
                    g = math.exp(log_scale - log_ref)
                    dens_l *= g
                    dens_s *= g
                    log_ref = log_scale
            elif oi[t] > oi[t - 1]:
                added = oi[t] - oi[t - 1]
                cohort[t] = added
                cohort_log[t] = log_scale
                unscaled = added * math.exp(log_ref - log_scale)
                for j in range(dist.shape[0]):
                    kb = _bin(close[t] * (1.0 - dist[j]), step) - kmin
                    dens_l[kb] += unscaled * weights[j]
                    long_hi = max(long_hi, kb)
                    kb = _bin(close[t] * (1.0 + dist[j]), step) - kmin
                    dens_s[kb] += unscaled * weights[j]
                    short_lo = min(short_lo, kb)
        g = math.exp(log_scale - log_ref)
        if record:
            for k in range(nlev):
                snap_long[t, k] = dens_l[k] * g
                snap_short[t, k] = dens_s[k] * g
        c = close[t]
        if math.isnan(c) or not oi[t] > 0.0:
            continue
        kc = _bin(c, step) - kmin
        scale = g / oi[t] * 100.0
        for b in range(n_bands):
            lo = max(_bin(c * (1.0 - bands[b]), step) - kmin, 0)
            total = 0.0
            for k in range(lo, kc + 1):
                total += dens_l[k]
            out[t, b] = total * scale
            hi = min(_bin(c * (1.0 + bands[b]), step) - kmin, nlev - 1)
            total = 0.0
            for k in range(kc, hi + 1):
                total += dens_s[k]
            out[t, n_bands + b] = total * scale
        below, above = out[t, n_bands - 1], out[t, 2 * n_bands - 1]
        if below + above > 1e-9:
            out[t, 2 * n_bands] = (above - below) / (above + below)
        # Densest level within cluster_range: ties (within 1e-9) go to the level nearest price.
        floor_ = 1e-9 * oi[t] / g
        lo = max(_bin(c * (1.0 - cluster_range), step) - kmin, 0)
        best = floor_
        best_k = -1
        for k in range(kc, lo - 1, -1):
            if dens_l[k] > best * (1.0 + 1e-9):
                best = dens_l[k]
                best_k = k
        if best_k >= 0:
            out[t, 2 * n_bands + 1] = 100.0 * (1.0 - math.exp((best_k + kmin + 0.5) * step) / c)
        hi = min(_bin(c * (1.0 + cluster_range), step) - kmin, nlev - 1)
        best = floor_
        best_k = -1
        for k in range(kc, hi + 1):
            if dens_s[k] > best * (1.0 + 1e-9):
                best = dens_s[k]
                best_k = k
        if best_k >= 0:
            out[t, 2 * n_bands + 2] = 100.0 * (math.exp((best_k + kmin + 0.5) * step) / c - 1.0)


def _simulate(g: SeriesGrid, config: HeatmapConfig, record: bool):
    dist = config.distances()
    step = config.step
    close, high, low, oi = g["close"], g["high"], g["low"], g["oi_usd"]
    max_age = bars(config.max_age_hours, g.bar)
    if max_age < 2:
        raise DataError("heatmap config: max_age_hours must span at least 2 bars")
    n = len(g)
    reach = max(dist.max(), config.cluster_range_pct / 100.0, BANDS_PCT[-1] / 100.0)
    if n and np.isfinite(low).any():
        kmin = math.floor(math.log(np.nanmin(low) * (1.0 - reach)) / step) - 2
        kmax = math.floor(math.log(np.nanmax(high) * (1.0 + reach)) / step) + 2
    else:
        kmin, kmax = 0, 0
    nlev = kmax - kmin + 1
    # Lowest low / highest high over the bars a cohort expiring at t lived through after it
    # was opened (t - max_age + 1 .. t - 1).
    min_low_before = pd.Series(low).rolling(max_age - 1, min_periods=1).min().shift(1).to_numpy()
    max_high_before = pd.Series(high).rolling(max_age - 1, min_periods=1).max().shift(1).to_numpy()
    shape = (n, nlev) if record else (0, 0)
    snap_long = np.zeros(shape)
    snap_short = np.zeros(shape)
    out = np.full((n, _N_OUT), np.nan)
    _run(
        close,
        high,
        low,
        oi,
        min_low_before,
        max_high_before,
        dist,
        np.asarray(config.weights, dtype="float64"),
        step,
        kmin,
        nlev,
        max_age,
        np.asarray(BANDS_PCT, dtype="float64") / 100.0,
        config.cluster_range_pct / 100.0,
        record,
        snap_long,
        snap_short,
        out,
    )
    levels = np.exp((np.arange(kmin, kmax + 1) + 0.5) * step)
    return out, levels, snap_long, snap_short


def compute(g: SeriesGrid, config: HeatmapConfig = DEFAULT_CONFIG) -> dict[str, np.ndarray]:
    out, *_ = _simulate(g, config, record=False)
    return {spec.name: out[:, i] for i, spec in enumerate(SPECS)}


def liquidation_heatmap(
    frame: pd.DataFrame, config: HeatmapConfig = DEFAULT_CONFIG, bar: pd.Timedelta = BAR
) -> Heatmap:
    """The price × time grid of estimated liquidation levels for one (symbol, venue) series."""
    keys = frame[["symbol", "venue"]].astype(str).drop_duplicates()
    if len(keys) != 1:
        raise DataError(f"liquidation_heatmap needs one symbol and venue, got {len(keys)}")
    grid = to_grid(frame.sort_values("timestamp", kind="stable"), bar)
    _, levels, snap_long, snap_short = _simulate(grid, config, record=True)
    return Heatmap(
        price_levels=levels,
        timestamps=grid.timestamps,
        long_density=snap_long,
        short_density=snap_short,
    )
