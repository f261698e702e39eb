"""The liquidation book: open positions binned by their forced-exit price, and the cascade loop.

Positions are kept as notional per (side, tier, log-price bin of the exit price), not one by
one, so a year of minutes stays cheap. The tiers are the leverage levels (the exit is the
liquidation price) plus one last tier of stop-loss orders (the exit is the trader's own stop,
placed beyond recent lows and highs and round numbers): both are market orders once the price
reaches them, but only the first are liquidations. Two tricks keep every update O(1):
- closes hit every position in proportion, so a side's stored notional is multiplied by one
  running `scale` instead of touching every bin;
- funding moves every liquidation price of both sides by the same log amount (payers lose margin,
  receivers gain it), so it is one running `offset` instead of a shift of the histogram.

`resolve` is the feedback loop: liquidations are market orders that walk a finite book, their
impact moves the price, the new price crosses the next band, until no band is crossed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from flushcast.simulator.config import maintenance_margin

BIN = 0.001
"""Width of a liquidation-price bin in log price (10 bp)."""
HALF_BINS = 4000
"""Bins each side of the origin: +-4 in log price, a factor of 55 up or down."""
N_BINS = 2 * HALF_BINS

LONG, SHORT = 0, 1
# Indices into the float state vector `st`.
SCALE_L, SCALE_S, TOTAL_L, TOTAL_S, OFFSET, ORIGIN = 0, 1, 2, 3, 4, 5
# Indices into the int state vector `ptr`: highest long bin and lowest short bin that may hold
# notional. Every long bin above the price bin is empty (it would have been liquidated).
HI_L, LO_S = 0, 1
MAX_ROUNDS = 200
DISPERSION = 0.6
"""Half-width of a liquidation band, as a share of its distance from the entry price."""
MAX_SPREAD_BINS = 32


def new_book(n_tiers: int, origin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty book arrays (hist, st, ptr) centred on log price `origin`.

    `hist` has `n_tiers` leverage tiers and one more, the last, for stop-loss orders.
    """
    hist = np.zeros((2, n_tiers + 1, N_BINS))
    st = np.array([1.0, 1.0, 0.0, 0.0, 0.0, origin])
    ptr = np.array([-1, N_BINS], dtype=np.int64)
    return hist, st, ptr


def liquidation_offsets(levels: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Log distance from entry to liquidation price for longs and shorts at each leverage.

    Isolated margin: a long at leverage L with maintenance rate m is liquidated when the price
    has fallen by 1/L - m; a short when it has risen by the same.
    """
    lev = np.asarray(levels, dtype=float)
    mm = np.array([maintenance_margin(x) for x in levels])
    return np.log(1 - 1 / lev + mm), np.log(1 + 1 / lev - mm)


@njit(cache=True)
def price_bin(st: np.ndarray, y: float) -> int:
    """Bin of log price `y` in the book's stored coordinates (funding offset removed)."""
    j = math.floor((y - st[OFFSET] - st[ORIGIN]) / BIN) + HALF_BINS
    return min(max(j, 0), N_BINS - 1)


@njit(cache=True)
def open_position(hist, st, ptr, side: int, tier: int, y: float, liq_offset: float, usd: float):
    """Add `usd` of notional entered at log price `y`.

    Its liquidation price is spread evenly over +-DISPERSION of the distance to it: traders top
    up margin, use cross margin or enter a little off the price, so a band has width. Every
    part stays strictly on the far side of `y`.
    """
    k = price_bin(st, y)
    width = abs(liq_offset) * DISPERSION
    n = min(max(int(2.0 * width / BIN), 1), MAX_SPREAD_BINS)
    step = 2.0 * width / n if n > 1 else 0.0
    part_scaled = usd / n / st[SCALE_L + side]
    for i in range(n):
        j = price_bin(st, y + liq_offset - width + (i + 0.5) * step)
        if side == LONG:
            j = min(j, k - 1)
            if j < 0:
                continue
            hist[LONG, tier, j] += part_scaled
            st[TOTAL_L] += part_scaled
            ptr[HI_L] = max(ptr[HI_L], j)
        else:
            j = max(j, k + 1)
            if j >= N_BINS:
                continue
            hist[SHORT, tier, j] += part_scaled
            st[TOTAL_S] += part_scaled
            ptr[LO_S] = min(ptr[LO_S], j)


@njit(cache=True)
def close_share(hist, st, side: int, share: float):
    """Close `share` of every open position of one side (in proportion, as voluntary exits)."""
    s = SCALE_L if side == LONG else SCALE_S
    st[s] *= 1.0 - share
    if st[s] < 1e-150:  # renormalise before the scale underflows
        hist[side] *= st[s]
        st[TOTAL_L + side] *= st[s]
        st[s] = 1.0


@njit(cache=True)
def open_interest(st: np.ndarray, side: int) -> float:
    return st[TOTAL_L + side] * st[SCALE_L + side]


@njit(cache=True)
def _liquidate(hist, st, ptr, k: int):
    """Close every position whose exit bin the price (bin k) has reached.

    Returns (longs liquidated, shorts liquidated, long stops, short stops, tier mask, bins hit),
    all USD. Stops (the last tier) are not liquidations and not in the tier mask.
    """
    liq_l = 0.0
    liq_s = 0.0
    stop_l = 0.0
    stop_s = 0.0
    tiers = 0
    bins = 0
    n_lev = hist.shape[1] - 1
    if k <= ptr[HI_L]:
        for j in range(max(k, 0), ptr[HI_L] + 1):
            hit = False
            for t in range(n_lev + 1):
                v = hist[LONG, t, j]
                if v > 0.0:
                    if t == n_lev:
                        stop_l += v
                    else:
                        liq_l += v
                        tiers |= 1 << t
                    hist[LONG, t, j] = 0.0
                    hit = True
            bins += hit
        ptr[HI_L] = k - 1
        st[TOTAL_L] = max(st[TOTAL_L] - liq_l - stop_l, 0.0)
    if k >= ptr[LO_S]:
        for j in range(ptr[LO_S], min(k, N_BINS - 1) + 1):
            hit = False
            for t in range(n_lev + 1):
                v = hist[SHORT, t, j]
                if v > 0.0:
                    if t == n_lev:
                        stop_s += v
                    else:
                        liq_s += v
                        tiers |= 1 << (16 + t)
                    hist[SHORT, t, j] = 0.0
                    hit = True
            bins += hit
        ptr[LO_S] = k + 1
        st[TOTAL_S] = max(st[TOTAL_S] - liq_s - stop_s, 0.0)
    sl = st[SCALE_L]
    ss = st[SCALE_S]
    return liq_l * sl, liq_s * ss, stop_l * sl, stop_s * ss, tiers, bins


@njit(cache=True)
def margin_calls(hist, st, ptr, y: float, zone_bins: int, share: float) -> tuple[float, float]:
    """Liquidate `share` of the positions within `zone_bins` of their liquidation price.

    Stands for what a price-only band misses: cross-margin accounts tipped over by their other
    positions or fees, and venues' stepwise partial liquidation as the margin ratio nears 100 %.
    It is the steady trickle of liquidations real feeds show in quiet hours.
    """
    k = price_bin(st, y)
    liq_l = 0.0
    liq_s = 0.0
    n_tiers = hist.shape[1] - 1  # stops have no margin to call
    for j in range(max(k - zone_bins, 0), min(ptr[HI_L], k - 1) + 1):
        for t in range(n_tiers):
            v = hist[LONG, t, j] * share
            hist[LONG, t, j] -= v
            liq_l += v
    for j in range(max(ptr[LO_S], k + 1), min(k + zone_bins, N_BINS - 1) + 1):
        for t in range(n_tiers):
            v = hist[SHORT, t, j] * share
            hist[SHORT, t, j] -= v
            liq_s += v
    st[TOTAL_L] = max(st[TOTAL_L] - liq_l, 0.0)
    st[TOTAL_S] = max(st[TOTAL_S] - liq_s, 0.0)
    return liq_l * st[SCALE_L], liq_s * st[SCALE_S]


@njit(cache=True)
def book_impact(net_usd: float, depth_1pct_usd: float) -> float:
    """Log move of a net market order `net_usd` (buy > 0) walking the book.

    Resting depth grows linearly with distance from the price (books are thicker further out),
    so the cumulative depth within d is `depth_1pct * (d / 1 %)^2` and the move grows as the
    square root of the order, as the empirical square-root impact law says.
    """
    move = 0.01 * math.sqrt(abs(net_usd) / depth_1pct_usd)
    return move if net_usd >= 0.0 else -move


@njit(cache=True)
def resolve(hist, st, ptr, y: float, depth_1pct_usd: float):
    """Run the cascade loop from log price `y`; return (y, long, short, stops, rounds, tiers, bins).

    Liquidated longs and triggered sell stops are market sells, shorts and buy stops market buys;
    together they walk one book (see `book_impact`), and the price they leave may cross the
    next band. `rounds` counts how many times forced orders moved the price into a further band
    (>= 2 is a feedback loop); `tiers` is a bit mask of leverage tiers liquidated (longs in bits
    0-15, shorts 16-31); `stops` is the USD of stop orders triggered (both sides).
    """
    y_start = y
    total_l = 0.0
    total_s = 0.0
    net_stops = 0.0
    stops = 0.0
    tiers = 0
    bins = 0
    rounds = 0
    while rounds < MAX_ROUNDS:
        liq_l, liq_s, stop_l, stop_s, hit, nb = _liquidate(hist, st, ptr, price_bin(st, y))
        if liq_l == 0.0 and liq_s == 0.0 and stop_l == 0.0 and stop_s == 0.0:
            break
        rounds += 1
        total_l += liq_l
        total_s += liq_s
        net_stops += stop_s - stop_l
        stops += stop_l + stop_s
        tiers |= hit
        bins += nb
        y = y_start + book_impact(total_s - total_l + net_stops, depth_1pct_usd)
    return y, total_l, total_s, stops, rounds, tiers, bins


@njit(cache=True)
def place_stops(hist, st, ptr, side: int, y: float, y_stop: float, usd: float, half_bins: int):
    """Add `usd` of stop-loss exits around log price `y_stop`, strictly beyond the price `y`."""
    k = price_bin(st, y)
    centre = price_bin(st, y_stop)
    tier = hist.shape[1] - 1
    n = 2 * half_bins + 1
    part_scaled = usd / n / st[SCALE_L + side]
    for i in range(n):
        j = centre - half_bins + i
        if side == LONG:
            j = min(j, k - 1)
            if j < 0:
                continue
            hist[LONG, tier, j] += part_scaled
            st[TOTAL_L] += part_scaled
            ptr[HI_L] = max(ptr[HI_L], j)
        else:
            j = max(j, k + 1)
            if j >= N_BINS:
                continue
            hist[SHORT, tier, j] += part_scaled
            st[TOTAL_S] += part_scaled
            ptr[LO_S] = min(ptr[LO_S], j)


@njit(cache=True)
def notional_within(hist, st, ptr, side: int, y: float, log_dist: float, stops: bool) -> float:
    """USD that would be force-closed if the price moved `log_dist` (> 0) against `side`.

    Liquidations only, or with `stops` the stop orders too.
    """
    k = price_bin(st, y)
    n_tiers = hist.shape[1] if stops else hist.shape[1] - 1
    total = 0.0
    if side == LONG:
        lo = max(price_bin(st, y - log_dist), 0)
        for j in range(lo, min(k, ptr[HI_L]) + 1):
            for t in range(n_tiers):
                total += hist[LONG, t, j]
        return total * st[SCALE_L]
    hi = min(price_bin(st, y + log_dist), N_BINS - 1)
    for j in range(max(k, ptr[LO_S]), hi + 1):
        for t in range(n_tiers):
            total += hist[SHORT, t, j]
    return total * st[SCALE_S]


@dataclass(frozen=True)
class ShockOutcome:
    """What one price shock did to a book."""

    liquidated_long_usd: float
    liquidated_short_usd: float
    log_move: float
    """Total log price move: the shock plus the liquidations' impact."""
    rounds: int
    bands: int
    """Distinct liquidation-price bins crossed."""


class LiquidationBook:
    """A single-symbol book to drive by hand: place positions, apply a shock, see the cascade."""

    def __init__(self, price: float, leverage_levels: tuple[float, ...] = (5, 10, 20, 25, 50, 100)):
        self.levels = tuple(float(x) for x in leverage_levels)
        self.long_offsets, self.short_offsets = liquidation_offsets(self.levels)
        self.y = math.log(price)
        self.hist, self.st, self.ptr = new_book(len(self.levels), self.y)

    @property
    def price(self) -> float:
        return math.exp(self.y)

    def open(self, side: str, usd: float, entry_price: float, leverage: float) -> float:
        """Open a position; return its liquidation price (bin-rounded by the book)."""
        tier = self.levels.index(float(leverage))
        s = LONG if side == "long" else SHORT
        offsets = self.long_offsets if s == LONG else self.short_offsets
        open_position(
            self.hist, self.st, self.ptr, s, tier, math.log(entry_price), offsets[tier], usd
        )
        return entry_price * math.exp(offsets[tier])

    def open_interest(self) -> float:
        return open_interest(self.st, LONG) + open_interest(self.st, SHORT)

    def shock(self, log_return: float, depth_usd_per_pct: float) -> ShockOutcome:
        """Move the price by `log_return`, then let liquidations walk a book of the given depth."""
        start = self.y
        y, liq_l, liq_s, _, rounds, _, bands = resolve(
            self.hist, self.st, self.ptr, self.y + log_return, depth_usd_per_pct
        )
        self.y = y
        return ShockOutcome(liq_l, liq_s, y - start, rounds, bands)
