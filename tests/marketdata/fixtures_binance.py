"""Small Binance Vision archives written from the documented formats (binance-public-data README).

Each builder writes one zip named as the archive names it, with one CSV inside, and returns the
path together with the rows it wrote so tests can compare what the adapter read against them.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.marketdata.adapters.binance_vision import (
    FUNDING_COLUMNS,
    KLINE_COLUMNS,
    LIQUIDATION_COLUMNS,
    METRICS_COLUMNS,
)


def write_zip(path: Path, member: str, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    return path


def checksum_line(path: Path) -> str:
    """The `.CHECKSUM` file content Binance publishes beside each zip."""
    return f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"


def _csv(frame: pd.DataFrame, header: bool) -> str:
    return frame.to_csv(index=False, header=header, lineterminator="\n")


def kline_rows(
    start: str, n: int, *, interval: str = "1h", seed: int = 0, price: float = 42_000.0
) -> pd.DataFrame:
    """USD-M klines as the archive writes them: epoch-ms open/close times, coin volume, USDT."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(interval)
    opens = pd.date_range(start, periods=n, freq=step, tz="UTC")
    close = price * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.r_[price, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.003, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.003, n))
    volume = rng.uniform(500, 5000, n).round(3)
    quote = (volume * (open_ + close) / 2).round(4)
    taker = (volume * rng.uniform(0.3, 0.7, n)).round(3)
    open_ms = opens.as_unit("ms").asi8
    return pd.DataFrame(
        {
            "open_time": open_ms,
            "open": open_.round(1),
            "high": high.round(1),
            "low": low.round(1),
            "close": close.round(1),
            "volume": volume,
            "close_time": open_ms + int(step / pd.Timedelta("1ms")) - 1,
            "quote_volume": quote,
            "count": rng.integers(1000, 9000, n),
            "taker_buy_volume": taker,
            "taker_buy_quote_volume": (taker * (open_ + close) / 2).round(4),
            "ignore": 0,
        },
        columns=list(KLINE_COLUMNS),
    )


def kline_zip(
    folder: Path,
    symbol: str,
    period: str,
    rows: pd.DataFrame,
    *,
    interval: str = "1h",
    header: bool = True,
    micros: bool = False,
) -> Path:
    """`<symbol>-<interval>-<period>.zip`; `micros` writes times in µs as newer archives do."""
    if micros:
        rows = rows.assign(open_time=rows["open_time"] * 1000, close_time=rows["close_time"] * 1000)
    name = f"{symbol}-{interval}-{period}"
    return write_zip(folder / f"{name}.zip", f"{name}.csv", _csv(rows, header))


def metrics_rows(day: str, symbol: str = "BTCUSDT", *, seed: int = 0) -> pd.DataFrame:
    """One day of 5-minute metrics: `create_time` from 00:00:00 to 23:55:00, UTC text."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(day, periods=288, freq="5min")
    oi_coin = 80_000 + np.cumsum(rng.normal(0, 50, 288))
    return pd.DataFrame(
        {
            "create_time": times.strftime("%Y-%m-%d %H:%M:%S"),
            "symbol": symbol,
            "sum_open_interest": oi_coin.round(3),
            "sum_open_interest_value": (oi_coin * 42_000).round(5),
            "count_toptrader_long_short_ratio": rng.uniform(0.8, 2.0, 288).round(8),
            "sum_toptrader_long_short_ratio": rng.uniform(0.8, 2.0, 288).round(8),
            "count_long_short_ratio": rng.uniform(0.8, 2.5, 288).round(8),
            "sum_taker_long_short_vol_ratio": rng.uniform(0.5, 1.5, 288).round(8),
        },
        columns=list(METRICS_COLUMNS),
    )


def metrics_zip(folder: Path, symbol: str, day: str, rows: pd.DataFrame) -> Path:
    name = f"{symbol}-metrics-{day}"
    return write_zip(folder / f"{name}.zip", f"{name}.csv", _csv(rows, True))


def funding_rows(month: str, *, interval_hours: int = 8, seed: int = 0) -> pd.DataFrame:
    """Settlements of one month; `calc_time` lands a few ms after the hour, as in the archive."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(month, tz="UTC")
    times = pd.date_range(start, start + pd.offsets.MonthBegin(1), freq=f"{interval_hours}h")[:-1]
    calc = times.as_unit("ms").asi8 + rng.integers(0, 10, len(times))
    return pd.DataFrame(
        {
            "calc_time": calc,
            "funding_interval_hours": interval_hours,
            "last_funding_rate": rng.normal(1e-4, 5e-5, len(times)).round(8),
        },
        columns=list(FUNDING_COLUMNS),
    )


def funding_zip(folder: Path, symbol: str, month: str, rows: pd.DataFrame) -> Path:
    name = f"{symbol}-fundingRate-{month}"
    return write_zip(folder / f"{name}.zip", f"{name}.csv", _csv(rows, True))


def liquidation_rows(events: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    """COIN-M liquidation orders from (time, side, contracts, average price), each written twice
    as the archive does."""
    rows = [
        {
            "time": pd.Timestamp(t, tz="UTC").value // 10**6,  # epoch ms
            "side": side,
            "order_type": "LIMIT",
            "time_in_force": "IOC",
            "original_quantity": qty,
            "price": round(avg * (0.99 if side == "SELL" else 1.01), 1),
            "average_price": avg,
            "order_status": "FILLED",
            "last_fill_quantity": qty,
            "accumulated_fill_quantity": qty,
        }
        for t, side, qty, avg in events
    ]
    frame = pd.DataFrame(rows, columns=list(LIQUIDATION_COLUMNS))
    return pd.concat([frame, frame]).sort_values("time", kind="stable").reset_index(drop=True)


def liquidation_zip(folder: Path, symbol: str, day: str, rows: pd.DataFrame) -> Path:
    name = f"{symbol}-liquidationSnapshot-{day}"
    return write_zip(folder / f"{name}.zip", f"{name}.csv", _csv(rows, True))
