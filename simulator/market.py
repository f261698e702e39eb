"""The whole engine state of a simulated market, to advance, copy and continue.

A `Market` holds every symbol's book and scalar state at an hour boundary. `advance` runs whole
hours with given random draws; `copy` gives an independent market, so the same state can be
continued many times with fresh draws (see `drivers.draw` with a key). The leader (BTCUSDT when
present) runs first; every other symbol feels the leader's realised minute returns, cascades
included, one minute late and scaled by its beta, so alt flushes follow BTC's.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from flushcast.simulator import engine
from flushcast.simulator.book import (
    ORIGIN,
    SCALE_L,
    SCALE_S,
    ShockOutcome,
    liquidation_offsets,
    new_book,
    resolve,
)
from flushcast.simulator.config import DEFAULT_PROFILES, OTHER_PROFILE, ScenarioConfig
from flushcast.simulator.drivers import Drivers

LEADER = "BTCUSDT"


@dataclass
class SymbolState:
    """One symbol's engine state: the book (`hist`, `st`, `ptr`), scalars `sv`, 24 h rings."""

    hist: np.ndarray
    st: np.ndarray
    ptr: np.ndarray
    sv: np.ndarray
    rings: np.ndarray

    def copy(self) -> SymbolState:
        return SymbolState(*(a.copy() for a in (self.hist, self.st, self.ptr, self.sv, self.rings)))


@dataclass(frozen=True)
class Chunk:
    """What `advance` produced for one symbol: hourly bars, ground truth, cascades (raw)."""

    hourly: np.ndarray
    truth: np.ndarray
    cascades: np.ndarray


class Market:
    """Every symbol's engine state at an hour boundary, `hour` hours after `start`."""

    def __init__(self, config: ScenarioConfig, symbols: Sequence[str], start: pd.Timestamp):
        symbols = list(dict.fromkeys(symbols))
        if not symbols:
            raise ValueError("give at least one symbol")
        leader = LEADER if LEADER in symbols else symbols[0]
        self.config = config
        self.start = start
        self.order = [leader] + [s for s in symbols if s != leader]
        self.params = engine.param_vector(config)
        self.long_off, self.short_off = liquidation_offsets(config.leverage_levels)
        weights = np.asarray(config.leverage_weights, dtype=float)
        self.weights = weights / weights.sum()
        self.log_leverage = np.log(np.asarray(config.leverage_levels, dtype=float))
        self.consts: dict[str, np.ndarray] = {}
        self.states: dict[str, SymbolState] = {}
        week0 = start.day_of_week * 1440 + start.hour * 60
        for symbol in self.order:
            profile = DEFAULT_PROFILES.get(symbol, OTHER_PROFILE)
            y0 = math.log(profile.start_price)
            consts = np.zeros(engine.N_CONSTS)
            consts[engine.K_Y0] = y0
            consts[engine.K_OI_REF] = profile.oi_usd
            consts[engine.K_BETA] = 0.0 if symbol == leader else profile.beta
            consts[engine.K_IDIO] = profile.idio_vol
            consts[engine.K_WEEK0] = week0
            self.consts[symbol] = consts
            hist, st, ptr = new_book(len(self.weights), y0)
            sv, rings = engine.initial_state(self.params, consts)
            self.states[symbol] = SymbolState(hist, st, ptr, sv, rings)
        self.hour = 0
        self.log_from: int | None = None
        self.leader_last = 0.0
        """The leader's return in the last minute simulated (the alts' next input)."""

    @property
    def leader(self) -> str:
        return self.order[0]

    def copy(self) -> Market:
        """An independent market in the same state (constants shared, state copied)."""
        other = copy.copy(self)
        other.states = {s: state.copy() for s, state in self.states.items()}
        return other

    def advance(self, drivers: Mapping[str, Drivers], *, final: bool = False) -> dict[str, Chunk]:
        """Run every symbol for the hours its `drivers` cover (the same for all symbols).

        Cascades are logged if they start at or after hour `log_from` (None: not at all, as in
        the burn-in); `final` closes a cascade still open at the last minute, as the end of a
        simulation does.
        """
        hours = {d.hours for d in drivers.values()}
        if len(hours) != 1 or set(drivers) != set(self.order):
            raise ValueError("give drivers of equal length for every symbol of the market")
        n = hours.pop()
        clock0 = self.hour * engine.MINUTES_PER_HOUR
        never = np.iinfo(np.int64).max
        log_from = never if self.log_from is None else self.log_from * engine.MINUTES_PER_HOUR
        out: dict[str, Chunk] = {}
        leader_ret = np.zeros(0)
        for symbol in self.order:
            state = self.states[symbol]
            hourly = np.full((n, engine.N_HOURLY), np.nan)
            truth = np.full((n, engine.N_TRUTH), np.nan)
            ret = np.zeros(n * engine.MINUTES_PER_HOUR)
            casc = np.zeros((engine.cascade_capacity(n), engine.N_CASCADE))
            n_casc = engine.run(
                self.params,
                state.hist,
                state.st,
                state.ptr,
                state.sv,
                state.rings,
                self.consts[symbol],
                self.long_off,
                self.short_off,
                self.weights,
                self.log_leverage,
                leader_ret,
                clock0,
                log_from,
                final,
                *drivers[symbol].arrays(),
                hourly,
                truth,
                ret,
                casc,
                0,
            )
            if symbol == self.leader:
                # Alts see the leader's return of the minute before: shift by one.
                leader_ret = np.concatenate(([self.leader_last], ret[:-1]))
                self.leader_last = float(ret[-1])
            out[symbol] = Chunk(hourly, truth, casc[:n_casc])
        self.hour += n
        return out

    def with_buildup_from(self, donor: Market) -> Market:
        """A copy of this market whose build-up comes from `donor` (another hour's state).

        Build-up is the traders' side (`engine.BUILDUP_STATE`): the book of leveraged positions
        and stops, crowding and the funding it made, their view of volatility and how long it
        has been compressed. It is moved onto this market's price (same distances from the
        price) and scaled to its size; price, the volatility regime, depth and the clock stay
        this market's own.
        """
        other = self.copy()
        for symbol, state in other.states.items():
            given = donor.states[symbol]
            y, y_donor = state.sv[engine.S_Y], given.sv[engine.S_Y]
            size = state.sv[engine.S_OI_TARGET] / given.sv[engine.S_OI_TARGET]
            state.hist = given.hist.copy()
            state.ptr = given.ptr.copy()
            state.st = given.st.copy()
            state.st[ORIGIN] += y - y_donor
            state.st[SCALE_L] *= size
            state.st[SCALE_S] *= size
            for k in engine.BUILDUP_STATE:
                state.sv[k] = given.sv[k]
            state.sv[engine.S_BOOK_TARGET] *= size
        return other

    def depth(self, symbol: str) -> float:
        """USD resting within 1 % of the price now (season and thinning after shocks included)."""
        sv = self.states[symbol].sv
        return (
            self.config.book_depth
            * sv[engine.S_OI_TARGET]
            * sv[engine.S_DEPTH_SEASON]
            * sv[engine.S_THIN]
        )

    def shock_outcome(self, symbol: str, log_move: float) -> ShockOutcome:
        """What a sudden move of `log_move` would do now to `symbol`'s book (on a copy).

        The fragility of the moment: the same shock is amplified by the forced exits it sets
        off, so its outcome depends on how much sits near the price and how deep the book is.
        """
        state = self.states[symbol].copy()
        start = state.sv[engine.S_Y]
        y, liq_l, liq_s, _, rounds, _, bands = resolve(
            state.hist, state.st, state.ptr, start + log_move, self.depth(symbol)
        )
        return ShockOutcome(liq_l, liq_s, y - start, rounds, bands)
