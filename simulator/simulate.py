"""The simulator's Python API: `simulate(...) -> SimResult(frame, cascades)` and writing it out.

The leader (BTCUSDT when present) is simulated first; every other symbol feels the leader's
realised minute returns, cascades included, one minute late and scaled by its beta, so alt
flushes follow BTC's the way they do in real markets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from marketdata.atomic import write_atomic
from marketdata.schema import conform
from marketdata.store import MarketStore
from simulator import engine
from simulator.book import liquidation_offsets, new_book
from simulator.config import DEFAULT_PROFILES, OTHER_PROFILE, ScenarioConfig
from simulator.drivers import draw

VENUE = "sim"
DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
LEADER = "BTCUSDT"
BURN_IN_DAYS = 14
"""Simulated but not output: the book needs time to fill with positions at many prices."""
CASCADE_LOG = "cascades.parquet"

CASCADE_COLUMNS: dict[str, str] = {
    "symbol": "symbol",
    "start": "first minute with cascade liquidations, UTC",
    "end": "end of the last minute with cascade liquidations, UTC",
    "direction": "long_flush (longs liquidated, price down) or short_squeeze",
    "liq_long_usd": "USD of longs liquidated during the cascade",
    "liq_short_usd": "USD of shorts liquidated during the cascade",
    "notional_usd": "all USD liquidated during the cascade",
    "oi_share": "notional_usd / typical open interest at the start",
    "price_move": "price change from just before the start to the extreme in the cascade direction",
    "rounds": "most feedback rounds in one minute (liquidation impact crossing the next band)",
    "bands": "liquidation-price bins (10 bp) crossed",
    "leverage_tiers": "leverage tiers liquidated on the flushed side, highest first",
}


@dataclass(frozen=True)
class SimResult:
    """A simulated market: the canonical hourly frame and the ground-truth cascade log."""

    frame: pd.DataFrame
    cascades: pd.DataFrame
    config: ScenarioConfig
    seed: int

    def write(self, root: str | Path) -> Path:
        """Store the frame (venue `sim`) and write the cascade log beside it, both atomically."""
        root = Path(root)
        provenance = {
            (str(symbol), VENUE): {
                "source": "flushcast simulator",
                "seed": self.seed,
                "config": self.config.model_dump(mode="json"),
            }
            for symbol in self.frame["symbol"].unique()
        }
        MarketStore(root).write(self.frame, provenance)
        target = root / CASCADE_LOG
        write_atomic(target, lambda tmp: self.cascades.to_parquet(tmp, index=False))
        return target


def _resolve_config(config: ScenarioConfig | str | None) -> ScenarioConfig:
    if config is None:
        return ScenarioConfig()
    if isinstance(config, str):
        return ScenarioConfig.preset(config)  # type: ignore[arg-type]
    return config


def simulate(
    config: ScenarioConfig | str | None = None,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    days: int = 365,
    seed: int = 7,
    start: str | pd.Timestamp = "2024-01-01",
) -> SimResult:
    """Simulate `days` of hourly bars for `symbols` from `start` (a UTC date), deterministically."""
    config = _resolve_config(config)
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        raise ValueError("give at least one symbol")
    if days < 1:
        raise ValueError("days must be >= 1")
    start_ts = pd.Timestamp(start)
    start_ts = (
        start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts.tz_convert("UTC")
    )
    if start_ts != start_ts.normalize():
        raise ValueError("start must be a date (midnight UTC): funding settles at 00, 08, 16 UTC")
    leader = LEADER if LEADER in symbols else symbols[0]
    order = [leader] + [s for s in symbols if s != leader]

    burn = BURN_IN_DAYS * 1440
    minutes = burn + days * 1440
    sim_start = start_ts - pd.Timedelta(days=BURN_IN_DAYS)
    minute_of_week = sim_start.day_of_week * 1440
    params = engine.param_vector(config)
    long_off, short_off = liquidation_offsets(config.leverage_levels)
    weights = np.asarray(config.leverage_weights, dtype=float)
    weights = weights / weights.sum()

    frames: list[pd.DataFrame] = []
    logs: list[pd.DataFrame] = []
    leader_ret = np.zeros(0)
    for symbol in order:
        profile = DEFAULT_PROFILES.get(symbol, OTHER_PROFILE)
        y0 = math.log(profile.start_price)
        hist, st, ptr = new_book(len(weights), y0)
        drivers = draw(seed, symbol, minutes, config.shock_scale)
        hourly, ret, casc, _ = engine.run_symbol(
            params,
            hist,
            st,
            ptr,
            long_off,
            short_off,
            weights,
            y0,
            profile.oi_usd,
            0.0 if symbol == leader else profile.beta,
            profile.idio_vol,
            np.zeros(0) if symbol == leader else leader_ret,
            int(minute_of_week),
            burn,
            *drivers.arrays(),
        )
        if symbol == leader:
            leader_ret = ret
        frames.append(_hourly_frame(symbol, start_ts, hourly))
        logs.append(_cascade_frame(symbol, start_ts, casc, config.leverage_levels))
    frame = pd.concat(frames, ignore_index=True).sort_values(["symbol", "venue", "timestamp"])
    cascades = pd.concat(logs, ignore_index=True).sort_values(["start", "symbol"], kind="stable")
    return SimResult(
        frame=conform(frame),
        cascades=cascades.reset_index(drop=True),
        config=config,
        seed=seed,
    )


def _hourly_frame(symbol: str, start: pd.Timestamp, h: np.ndarray) -> pd.DataFrame:
    price = np.exp(h[:, [engine.H_OPEN, engine.H_HIGH, engine.H_LOW, engine.H_CLOSE]])
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=len(h), freq="1h", unit="us"),
            "symbol": symbol,
            "venue": VENUE,
            "open": price[:, 0],
            "high": price[:, 1],
            "low": price[:, 2],
            "close": price[:, 3],
            "volume_usd": h[:, engine.H_VOLUME],
            "oi_usd": h[:, engine.H_OI],
            "funding_rate": h[:, engine.H_FUNDING],
            "liq_long_usd": h[:, engine.H_LIQ_L],
            "liq_short_usd": h[:, engine.H_LIQ_S],
            "taker_buy_volume_usd": h[:, engine.H_TAKER],
            "long_short_ratio": h[:, engine.H_LSR],
        }
    )


def _tier_names(mask: int, shift: int, levels: tuple[float, ...]) -> str:
    hit = [lev for t, lev in enumerate(levels) if mask >> (shift + t) & 1]
    return ",".join(f"{lev:g}x" for lev in sorted(hit, reverse=True))


def _cascade_frame(
    symbol: str, start: pd.Timestamp, c: np.ndarray, levels: tuple[float, ...]
) -> pd.DataFrame:
    longs = c[:, engine.C_LIQ_L]
    shorts = c[:, engine.C_LIQ_S]
    flush = longs >= shorts
    y0 = c[:, engine.C_Y_START]
    extreme = np.where(flush, c[:, engine.C_Y_MIN], c[:, engine.C_Y_MAX])
    masks = c[:, engine.C_TIERS].astype(np.int64)
    minute = pd.Timedelta("1min")
    return pd.DataFrame(
        {
            "symbol": pd.Series([symbol] * len(c), dtype=str),
            "start": start + c[:, engine.C_START].astype(np.int64) * minute,
            "end": start + (c[:, engine.C_END].astype(np.int64) + 1) * minute,
            "direction": np.where(flush, "long_flush", "short_squeeze"),
            "liq_long_usd": longs,
            "liq_short_usd": shorts,
            "notional_usd": longs + shorts,
            "oi_share": (longs + shorts) / c[:, engine.C_OI],
            "price_move": np.expm1(extreme - y0),
            "rounds": c[:, engine.C_ROUNDS].astype(np.int64),
            "bands": c[:, engine.C_BANDS].astype(np.int64),
            "leverage_tiers": [
                _tier_names(int(m), 0 if f else 16, levels)
                for m, f in zip(masks, flush, strict=True)
            ],
        },
        columns=list(CASCADE_COLUMNS),
    )
