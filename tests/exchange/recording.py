"""What the fake exchange replays: per symbol, klines, funding, open interest and liquidations.

From the shared real data (`../shared/data/real`, see its README):

- `bybit_2024`: BTCUSDT, the 30,630 Bybit liquidation orders of `Roflkemper__chat-bot-v2`
  (2024-02-12 → 06-02, with the venue's own `Buy` = long liquidated) on the hourly BTCUSDT
  klines kept beside them in the same repository. Those klines are Binance SPOT (about $44 off
  the perp): the only real 2024 hourly candles in the shared set; they stand in for Bybit's perp
  klines here. No funding or open interest is recorded for that span.
- `binance_2025`: Binance USD-M candles and funding settlements of `0xknxwledge__...`
  (2025-03 → 10). Their volume is in coins; quote volume is taken as volume x close. No
  Binance liquidations or open interest are recorded there.
- `as_binance(bybit_2024)`: the same Bybit tape in Binance's forceOrder form: side relabelled to
  the order's side (a liquidated long is closed by a SELL) and thinned to the last order per
  second per symbol, as Binance's stream does. There is no recorded Binance forceOrder tape in
  the shared data.

`simulated` builds a complete recording from the built-in simulator (every column, events spread
inside each bar), for tests that must run without `../shared` and for the README's live session.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.marketdata.liquidations import LONG_LIQUIDATED_SIDE

HOUR = pd.Timedelta("1h")


@dataclass(frozen=True)
class Market:
    """One symbol's recorded history (times are UTC timestamps; klines keyed by bar open)."""

    klines: pd.DataFrame
    """timestamp, open, high, low, close, volume_usd, taker_buy_volume_usd"""
    funding: pd.DataFrame
    """timestamp (settlement), rate (fraction per `funding_hours`)"""
    open_interest: pd.DataFrame
    """timestamp (snapshot), oi_usd, oi_coin"""
    liquidations: pd.DataFrame
    """time_ms, side (the venue's label), qty (coins), price"""
    funding_hours: int = 8


@dataclass(frozen=True)
class Recording:
    venue: str
    markets: dict[str, Market]
    description: str


def _empty(*columns: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})


def _no_funding() -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.Series(dtype="datetime64[us, UTC]"), "rate": []})


def _no_oi() -> pd.DataFrame:
    frame = _empty("oi_usd", "oi_coin")
    frame.insert(0, "timestamp", pd.Series(dtype="datetime64[us, UTC]"))
    return frame


def bybit_2024(real_data: Path) -> Recording:
    folder = real_data / "Roflkemper__chat-bot-v2"
    klines = pd.concat(
        [
            pd.read_csv(folder / "state" / f"pattern_memory_BTCUSDT_1h_{year}.csv")
            for year in (2024, 2025)
        ],
        ignore_index=True,
    )
    klines = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(klines["open_time"], utc=True),
            "open": klines["open"],
            "high": klines["high"],
            "low": klines["low"],
            "close": klines["close"],
            "volume_usd": klines["quote_asset_volume"],
            "taker_buy_volume_usd": klines["taker_buy_quote"],
        }
    ).drop_duplicates("timestamp")
    events = pd.read_parquet(folder / "data" / "historical" / "bybit_liquidations_2024.parquet")
    liquidations = pd.DataFrame(
        {
            "time_ms": events["ts_ms"].astype("int64"),
            "side": events["side"].astype(str),
            "qty": events["qty"].astype("float64"),
            "price": events["price"].astype("float64"),
        }
    ).sort_values("time_ms", kind="stable")
    market = Market(klines.reset_index(drop=True), _no_funding(), _no_oi(), liquidations)
    return Recording(
        "bybit",
        {"BTCUSDT": market},
        "Bybit BTCUSDT liquidations 2024 (Roflkemper) on Binance spot hourly klines",
    )


def binance_2025(real_data: Path, coins: tuple[str, ...] = ("BTC", "ETH")) -> Recording:
    folder = real_data / "0xknxwledge__group-m-finm33150-final" / "data"
    candles = pd.read_parquet(folder / "candles.parquet")
    funding = pd.read_parquet(folder / "funding_rates.parquet")
    markets = {}
    for coin in coins:
        c = candles[(candles["venue"] == "binance") & (candles["coin"] == coin)]
        c = c.sort_values("timestamp").drop_duplicates("timestamp")
        klines = pd.DataFrame(
            {
                "timestamp": c["timestamp"],
                "open": c["o"],
                "high": c["h"],
                "low": c["l"],
                "close": c["c"],
                "volume_usd": c["v"] * c["c"],
                "taker_buy_volume_usd": np.nan,
            }
        )
        f = funding[(funding["venue"] == "binance") & (funding["coin"] == coin)]
        f = f.sort_values("timestamp").drop_duplicates("timestamp")
        settlements = pd.DataFrame({"timestamp": f["timestamp"], "rate": f["funding_rate"]})
        markets[f"{coin}USDT"] = Market(
            klines.reset_index(drop=True),
            settlements.reset_index(drop=True),
            _no_oi(),
            _empty("time_ms", "side", "qty", "price"),
        )
    return Recording("binance", markets, "Binance USD-M candles and funding 2025 (0xknxwledge)")


def as_binance(recording: Recording) -> Recording:
    """A Bybit recording in Binance's forceOrder form: order sides, one order per second."""
    bybit, binance = LONG_LIQUIDATED_SIDE["bybit"], LONG_LIQUIDATED_SIDE["binance"]
    order_side = {long: label for label, long in binance.items()}
    markets = {}
    for symbol, market in recording.markets.items():
        events = market.liquidations
        sides = events["side"].map(lambda s: order_side[bybit[s]])
        relabelled = events.assign(side=sides.to_numpy())
        second = relabelled["time_ms"] // 1000
        thinned = relabelled[~second.duplicated(keep="last")]
        markets[symbol] = replace(market, liquidations=thinned.reset_index(drop=True))
    return Recording("binance", markets, recording.description + ", as Binance forceOrder")


def simulated(
    venue: str,
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
    days: int = 120,
    seed: int = 3,
    start: str = "2024-01-01",
    market: pd.DataFrame | None = None,
) -> Recording:
    """Every column from the simulator (or from `market`, a canonical frame): settlements at
    00, 08 and 16 UTC, OI snapshots at every bar close, each bar's liquidations split into a few
    orders at random times inside the bar."""
    if market is None:
        from flushcast.simulator import simulate

        market = simulate("default", list(symbols), days=days, seed=seed, start=start).frame
    rng = np.random.default_rng(seed)
    long_label = {long: label for label, long in LONG_LIQUIDATED_SIDE[venue].items()}
    markets = {}
    for symbol in symbols:
        bars = market[market["symbol"].astype(str) == symbol].sort_values("timestamp")
        stamps = bars["timestamp"].reset_index(drop=True)
        close_at = stamps + HOUR
        klines = pd.DataFrame(
            {
                "timestamp": stamps,
                **{
                    c: bars[c].to_numpy()
                    for c in ("open", "high", "low", "close", "volume_usd", "taker_buy_volume_usd")
                },
            }
        )
        settles = close_at.dt.hour.isin([0, 8, 16]).to_numpy()
        funding = pd.DataFrame(
            {"timestamp": close_at[settles], "rate": bars["funding_rate"].to_numpy()[settles]}
        )
        close = bars["close"].to_numpy()
        oi_usd = bars["oi_usd"].to_numpy()
        oi = pd.DataFrame({"timestamp": close_at, "oi_usd": oi_usd, "oi_coin": oi_usd / close})
        rows = []
        opens_ms = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")
        for side_long, column in ((True, "liq_long_usd"), (False, "liq_short_usd")):
            usd = bars[column].to_numpy()
            for opened, total, price in zip(opens_ms, usd, close, strict=True):
                if not total > 0:
                    continue
                n = int(rng.integers(1, 6))
                shares = rng.dirichlet(np.ones(n))
                times = np.sort(rng.integers(0, 3_600_000, n))
                for t, share in zip(times, shares, strict=True):
                    rows.append(
                        (int(opened + t), long_label[side_long], total * share / price, price)
                    )
        liquidations = pd.DataFrame(rows, columns=["time_ms", "side", "qty", "price"])
        liquidations = liquidations.sort_values("time_ms", kind="stable").reset_index(drop=True)
        markets[symbol] = Market(klines, funding.reset_index(drop=True), oi, liquidations)
    return Recording(venue, markets, f"simulated market ({', '.join(symbols)}), replayed")
