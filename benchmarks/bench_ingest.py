"""Ingest benchmark: parse + validate + store of generated Binance Vision kline archives.

Two workloads, each a fresh store (targets from the foundation issue: under 3 s each, peak memory
under 1 GB): one year of 1-minute klines for one symbol (525,600 rows, 12 monthly zips) and ten
symbols × two years of 1-hour klines (175,200 rows, 240 monthly zips).
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.measure import timed
from flushcast.marketdata.ingest import ingest
from flushcast.marketdata.store import MarketStore

KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)


def kline_zip(folder: Path, symbol: str, interval: str, month: pd.Timestamp, seed: int) -> Path:
    """One monthly klines archive in Binance Vision's layout (header row, epoch ms)."""
    step = pd.Timedelta(interval)
    opens = pd.date_range(month, month + pd.offsets.MonthBegin(1), freq=step, inclusive="left")
    rng = np.random.default_rng(seed)
    n = len(opens)
    close = 50_000 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, n))
    volume = rng.uniform(10, 100, n)
    ms = opens.as_unit("ms").asi8
    frame = pd.DataFrame(
        {
            "open_time": ms,
            "open": open_.round(1),
            "high": high.round(1),
            "low": low.round(1),
            "close": close.round(1),
            "volume": volume.round(3),
            "close_time": ms + step // pd.Timedelta("1ms") - 1,
            "quote_volume": (volume * close).round(2),
            "count": rng.integers(100, 1000, n),
            "taker_buy_volume": (volume / 2).round(3),
            "taker_buy_quote_volume": (volume * close / 2).round(2),
            "ignore": 0,
        }
    )
    name = f"{symbol}-{interval.replace('min', 'm')}-{month:%Y-%m}"
    path = folder / f"{name}.zip"
    text = io.StringIO()
    text.write(KLINE_HEADER + "\n")
    frame.to_csv(text, header=False, index=False)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.csv", text.getvalue())
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        months = pd.date_range("2023-01-01", periods=24, freq="MS", tz="UTC")
        minute = root / "minute"
        minute.mkdir()
        minute_zips = [
            kline_zip(minute, "BTCUSDT", "1min", m, i) for i, m in enumerate(months[:12])
        ]
        hourly = root / "hourly"
        hourly.mkdir()
        hourly_zips = [
            kline_zip(hourly, f"C{s}USDT", "1h", m, 100 * s + i)
            for s in range(10)
            for i, m in enumerate(months)
        ]
        report = timed(
            "1 symbol x 1 year of 1-minute klines (525,600 rows) -> 8,760 bars",
            lambda: ingest("binance-vision", minute_zips, MarketStore(root / "s1")),
            target_s=3.0,
        )
        assert report.datasets[0].rows == 8760
        end = months[-1] + pd.offsets.MonthBegin(1)
        expected = 10 * len(pd.date_range(months[0], end, freq="1h", inclusive="left"))
        report = timed(
            f"10 symbols x 2 years of 1-hour klines ({expected:,} rows)",
            lambda: ingest("binance-vision", hourly_zips, MarketStore(root / "s2")),
            target_s=3.0,
        )
        assert sum(d.rows for d in report.datasets) == expected


if __name__ == "__main__":
    main()
