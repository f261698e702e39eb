"""The simulator's Python API: `simulate(...) -> SimResult(frame, cascades, truth)` and writing it.

The leader (BTCUSDT when present) is simulated first; every other symbol feels the leader's
realised minute returns, cascades included, one minute late and scaled by its beta, so alt
flushes follow BTC's the way they do in real markets (see `market`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.common.atomic import write_atomic
from flushcast.marketdata.resample import to_bar
from flushcast.marketdata.schema import AGGREGATION, conform
from flushcast.marketdata.store import MarketStore
from flushcast.simulator import engine
from flushcast.simulator.config import ScenarioConfig
from flushcast.simulator.drivers import draw
from flushcast.simulator.market import Market

VENUE = "sim"
DEFAULT_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
BURN_IN_DAYS = 14
"""Simulated but not output: the book needs time to fill with positions at many prices."""
CASCADE_LOG = "cascades.parquet"
TRUTH_LOG = "truth.parquet"
BARS: dict[str, pd.Timedelta] = {
    "1h": pd.Timedelta("1h"),
    "4h": pd.Timedelta("4h"),
    "1d": pd.Timedelta("1D"),
}
"""Bar sizes `simulate` can emit; coarser bars aggregate the hourly ones (`marketdata.resample`)."""

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

TRUTH_COLUMNS: dict[str, str] = {
    "timestamp": "bar open time, UTC; the values are the state at the bar's close",
    "symbol": "symbol",
    "p_shock": "probability that a trigger shock arrives in the next hour (the hazard used)",
    "p_shock_1pct": "probability of a shock of at least 1 % (log move) in the next hour",
    "p_shock_2pct": "probability of a shock of at least 2 % in the next hour",
    "p_shock_5pct": "probability of a shock of at least 5 % in the next hour",
    "p_shock_down": "probability that a shock, if one comes, is downwards",
    "hazard_multiple": "the shock rate as a multiple of the neutral state's rate",
    "liq_long_1pct_usd": "USD of longs liquidated if price fell 1 % (true book)",
    "liq_long_2pct_usd": "USD of longs liquidated if price fell 2 %",
    "liq_long_5pct_usd": "USD of longs liquidated if price fell 5 %",
    "liq_short_1pct_usd": "USD of shorts liquidated if price rose 1 %",
    "liq_short_2pct_usd": "USD of shorts liquidated if price rose 2 %",
    "liq_short_5pct_usd": "USD of shorts liquidated if price rose 5 %",
    "leveraged_oi_usd": "open interest of liquidatable (leveraged) traders, USD",
    "long_share": "longs' share of the leveraged open interest",
    "depth_1pct_usd": "order-book depth within 1 % of the price, USD",
    "quiet_hours": "hours volatility has been compressed (traders' view)",
    "stops_1pct_usd": "USD of stop orders within 1 % of the price, both sides",
}
_TRUTH_VALUES = {
    "p_shock": engine.T_P_SHOCK,
    "p_shock_1pct": engine.T_P_SHOCK_1,
    "p_shock_2pct": engine.T_P_SHOCK_2,
    "p_shock_5pct": engine.T_P_SHOCK_5,
    "p_shock_down": engine.T_P_DOWN,
    "hazard_multiple": engine.T_MULTIPLE,
    "liq_long_1pct_usd": engine.T_LONG_1,
    "liq_long_2pct_usd": engine.T_LONG_2,
    "liq_long_5pct_usd": engine.T_LONG_5,
    "liq_short_1pct_usd": engine.T_SHORT_1,
    "liq_short_2pct_usd": engine.T_SHORT_2,
    "liq_short_5pct_usd": engine.T_SHORT_5,
    "leveraged_oi_usd": engine.T_LEV_OI,
    "long_share": engine.T_LONG_SHARE,
    "depth_1pct_usd": engine.T_DEPTH,
    "quiet_hours": engine.T_QUIET,
    "stops_1pct_usd": engine.T_STOPS_1,
}

PauseHook = Callable[[int, Market], None]
"""Called as `hook(t, market)` with the market at the close of output bar t (hourly)."""


@dataclass(frozen=True)
class SimResult:
    """A simulated market: canonical bars, the ground-truth cascade log and hourly truth."""

    frame: pd.DataFrame
    cascades: pd.DataFrame
    config: ScenarioConfig
    seed: int
    truth: pd.DataFrame | None = None
    bar: str = "1h"

    def write(self, root: str | Path) -> Path:
        """Store the frame (venue `sim`), write the cascade log and the truth beside it.

        All atomically; returns the cascade log's path.
        """
        root = Path(root)
        provenance = {
            (str(symbol), VENUE): {
                "source": "flushcast simulator",
                "seed": self.seed,
                "bar": self.bar,
                "config": self.config.model_dump(mode="json"),
            }
            for symbol in self.frame["symbol"].unique()
        }
        MarketStore(root).write(self.frame, provenance, bar=BARS[self.bar])
        target = root / CASCADE_LOG
        write_atomic(target, lambda tmp: self.cascades.to_parquet(tmp, index=False))
        if self.truth is not None:
            write_atomic(root / TRUTH_LOG, lambda tmp: self.truth.to_parquet(tmp, index=False))
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
    *,
    bar: str = "1h",
    pause_at: Sequence[int] = (),
    on_pause: PauseHook | None = None,
) -> SimResult:
    """Simulate `days` of bars for `symbols` from `start` (a UTC date), deterministically.

    `bar` is `1h` (the simulation's own bar), `4h` or `1d` (aggregated from it); the cascade log
    and the hourly truth are the same whatever the bar. `on_pause(t, market)` is called at the
    close of each hourly output bar t in `pause_at`, with the live market: copy it before
    continuing it (the benchmarks' oracle bound does), since the run goes on from it.
    """
    config = _resolve_config(config)
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        raise ValueError("give at least one symbol")
    if days < 1:
        raise ValueError("days must be >= 1")
    if bar not in BARS:
        raise ValueError(f"bar must be one of {', '.join(BARS)}, not {bar!r}")
    start_ts = pd.Timestamp(start)
    start_ts = (
        start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts.tz_convert("UTC")
    )
    if start_ts != start_ts.normalize():
        raise ValueError("start must be a date (midnight UTC): funding settles at 00, 08, 16 UTC")
    hours = days * 24
    burn = BURN_IN_DAYS * 24
    pauses = sorted({int(t) for t in pause_at})
    if pauses and (pauses[0] < 0 or pauses[-1] >= hours):
        raise ValueError(f"pause hours must be in [0, {hours})")

    market = Market(config, symbols, start_ts - pd.Timedelta(days=BURN_IN_DAYS))
    drivers = {s: draw(seed, s, burn + hours) for s in market.order}
    market.advance({s: d.window(0, burn) for s, d in drivers.items()})
    market.log_from = burn
    bounds = [t + 1 for t in pauses if t + 1 < hours] + [hours]
    chunks: list[dict] = []
    done = 0
    for end in bounds:
        window = {s: d.window(burn + done, burn + end) for s, d in drivers.items()}
        chunks.append(market.advance(window, final=end == hours))
        done = end
        if on_pause is not None and end - 1 in pauses:
            on_pause(end - 1, market)

    frames, logs, truths = [], [], []
    for symbol in market.order:
        hourly = np.concatenate([c[symbol].hourly for c in chunks])
        truth = np.concatenate([c[symbol].truth for c in chunks])
        casc = np.concatenate([c[symbol].cascades for c in chunks])
        frames.append(hourly_frame(symbol, start_ts, hourly))
        truths.append(truth_frame(symbol, start_ts, truth))
        clock0 = burn * engine.MINUTES_PER_HOUR
        logs.append(_cascade_frame(symbol, start_ts, casc, clock0, config.leverage_levels))
    frame = pd.concat(frames, ignore_index=True)
    if bar != "1h":
        frame = _coarser(frame, BARS[bar])
    frame = frame.sort_values(["symbol", "venue", "timestamp"])
    cascades = pd.concat(logs, ignore_index=True).sort_values(["start", "symbol"], kind="stable")
    truth = pd.concat(truths, ignore_index=True).sort_values(["symbol", "timestamp"])
    return SimResult(
        frame=conform(frame),
        cascades=cascades.reset_index(drop=True),
        config=config,
        seed=seed,
        truth=truth.reset_index(drop=True),
        bar=bar,
    )


def _coarser(frame: pd.DataFrame, bar: pd.Timedelta) -> pd.DataFrame:
    """Hourly bars aggregated to `bar` per symbol, by the schema's aggregation rules."""
    values = [c for c in frame.columns if c in AGGREGATION]
    parts = []
    for (symbol, venue), g in frame.groupby(["symbol", "venue"], sort=False):
        part, dropped = to_bar(g[["timestamp", *values]], bar=bar)
        assert dropped == 0, "simulated hours come in whole bars"
        parts.append(part.assign(symbol=symbol, venue=venue))
    return pd.concat(parts, ignore_index=True)


def truth_frame(symbol: str, start: pd.Timestamp, t: np.ndarray) -> pd.DataFrame:
    """The engine's truth rows as a frame (columns `TRUTH_COLUMNS`)."""
    out = pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=len(t), freq="1h", unit="us"),
            "symbol": pd.Series([symbol] * len(t), dtype=str),
        }
    )
    for name, column in _TRUTH_VALUES.items():
        out[name] = t[:, column]
    return out


def hourly_values(h: np.ndarray) -> dict[str, np.ndarray]:
    """The engine's hourly rows as canonical value columns (prices from log prices)."""
    out = {c: np.exp(h[:, i]) for c, i in _PRICES.items()}
    return out | {c: h[:, i] for c, i in _VALUES.items()}


def hourly_frame(symbol: str, start: pd.Timestamp, h: np.ndarray) -> pd.DataFrame:
    """The engine's hourly rows as a canonical frame (venue `sim`), bars from `start`."""
    keys = {
        "timestamp": pd.date_range(start, periods=len(h), freq="1h", unit="us"),
        "symbol": symbol,
        "venue": VENUE,
    }
    return pd.DataFrame(keys | hourly_values(h))


_PRICES = {
    "open": engine.H_OPEN,
    "high": engine.H_HIGH,
    "low": engine.H_LOW,
    "close": engine.H_CLOSE,
}
_VALUES = {
    "volume_usd": engine.H_VOLUME,
    "oi_usd": engine.H_OI,
    "funding_rate": engine.H_FUNDING,
    "liq_long_usd": engine.H_LIQ_L,
    "liq_short_usd": engine.H_LIQ_S,
    "taker_buy_volume_usd": engine.H_TAKER,
    "long_short_ratio": engine.H_LSR,
}


def _tier_names(mask: int, shift: int, levels: tuple[float, ...]) -> str:
    hit = [lev for t, lev in enumerate(levels) if mask >> (shift + t) & 1]
    return ",".join(f"{lev:g}x" for lev in sorted(hit, reverse=True))


def _cascade_frame(
    symbol: str, start: pd.Timestamp, c: np.ndarray, clock0: int, levels: tuple[float, ...]
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
            "start": start + (c[:, engine.C_START].astype(np.int64) - clock0) * minute,
            "end": start + (c[:, engine.C_END].astype(np.int64) + 1 - clock0) * minute,
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
