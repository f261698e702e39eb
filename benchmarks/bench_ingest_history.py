"""Ingest benchmark for the 4 h and daily history (issue 16), each workload in its own process so
each reports its own peak memory:

* snapshots: a year of 4 h bars for 4 symbols from two overlapping CoinGlass API snapshots
  (price, liquidation, funding, open interest; 32 saved Parquet files, the older with numbers
  as text, a quarter of the overlap revised): target under 5 s;
* the shared 4 h set and the shared daily set (../shared/data/real), with the README's
  commands (skipped when the data is absent).

Beside each, the floor: reading the same files with pandas alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.measure import timed
from flushcast.marketdata.ingest import ingest
from flushcast.marketdata.store import MarketStore

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
MAPPINGS = Path(__file__).resolve().parents[1] / "docs" / "mappings"
COINS = ("BTC", "ETH", "SOL", "XRP")
YEAR = 6 * 365
ENDPOINTS = {
    "price": "api_price_ohlc_history_{coin}",
    "liquidation": "api_futures_liquidation_aggregated_coin_history_{coin}",
    "funding": "api_futures_fundingRate_oi_weight_ohlc_history_{coin}",
    "open-interest": "api_futures_openInterest_ohlc_aggregated_history_{coin}",
}


def _series(coin: int, n: int, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    close = 100.0 * (coin + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 0.004, (2, n)))
    oi = 1e9 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    funding = rng.normal(0.01, 0.005, n)
    return {
        "price": pd.DataFrame(
            {
                "open": open_,
                "high": np.maximum(open_, close) * (1 + wick[0]),
                "low": np.minimum(open_, close) * (1 - wick[1]),
                "close": close,
                "volume_usd": rng.uniform(1e8, 5e8, n),
            }
        ),
        "liquidation": pd.DataFrame(
            {
                "aggregated_long_liquidation_usd": rng.exponential(2e6, n),
                "aggregated_short_liquidation_usd": rng.exponential(2e6, n),
            }
        ),
        "funding": pd.DataFrame(
            {"open": funding, "high": funding + 0.001, "low": funding - 0.001, "close": funding}
        ),
        "open-interest": pd.DataFrame(
            {"open": oi, "high": oi * 1.01, "low": oi * 0.99, "close": oi}
        ),
    }


def write_snapshots(folder: Path) -> list[Path]:
    """Two snapshots of a year of 4 h bars: the older one the first two thirds (text numbers),
    the newer the last two thirds with a quarter of the overlap revised by up to 5 %."""
    rng = np.random.default_rng(7)
    times = pd.date_range("2024-01-01", periods=YEAR, freq="4h", tz="UTC").as_unit("ms").asi8
    spans = {"older": slice(0, 2 * YEAR // 3), "newer": slice(YEAR // 3, YEAR)}
    paths = []
    for c, coin in enumerate(COINS):
        for kind, values in _series(c, YEAR, rng).items():
            for snapshot, span in spans.items():
                part = values.iloc[span].copy()
                if snapshot == "newer" and kind != "price":
                    revised = rng.random(len(part)) < 0.25
                    part.loc[revised] *= 1 + rng.uniform(-0.05, 0.05, (revised.sum(), 1))
                part.insert(0, "time", times[span])
                if snapshot == "older":
                    part = part.astype({c: str for c in part.columns if c != "time"})
                path = folder / snapshot / f"{ENDPOINTS[kind].format(coin=coin)}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                part.to_parquet(path, index=False)
                paths.append(path)
    return paths


def _floor(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        if path.suffix == ".parquet":
            pd.read_parquet(path)
        else:
            pd.read_csv(path)
    return time.perf_counter() - start


def _report(paths: list[Path], store: MarketStore, elapsed: float) -> None:
    floor = _floor(paths)
    frame = store.read()
    series = frame.groupby(["symbol", "venue"], observed=True).ngroups
    print(
        f"  {len(paths)} files -> {len(frame):,} bars in {series} series; floor (pandas "
        f"reading the files) {floor:.3f} s, ratio {elapsed / floor:.1f}",
        flush=True,
    )


def snapshots() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_snapshots(Path(tmp) / "files")
        store = MarketStore(Path(tmp) / "store")
        start = time.perf_counter()
        timed(
            f"4 h snapshots: 4 symbols x a year ({YEAR:,} bars each), two overlapping snapshots",
            lambda: ingest("coinglass-api", paths, store),
            target_s=5.0,
        )
        _report(paths, store, time.perf_counter() - start)


def shared_4h() -> None:
    data = REAL / "FelipeODonnell__liquidity-report" / "data"
    candles = REAL / "0xknxwledge__group-m-finm33150-final" / "data" / "candles.parquet"
    futures = sorted(data.glob("*/futures"))

    def coin_files(coin: str) -> list[Path]:
        return [
            p
            for base in futures
            for p in [
                *base.glob(f"liquidation/*_{coin}.parquet"),
                *base.glob(f"funding_rate/*_{coin}.parquet"),
                *base.glob(f"open_interest/*ohlc_aggregated_history_{coin}.parquet"),
            ]
        ]

    btc = [p for base in futures for p in base.glob("market/*.parquet")] + coin_files("BTC")
    with tempfile.TemporaryDirectory() as tmp:
        store = MarketStore(Path(tmp))

        def run() -> None:
            ingest("coinglass-api", btc, store, symbol="BTCUSDT")
            ingest(
                "table",
                [candles],
                store,
                venue="aggregate",
                bar=pd.Timedelta("4h"),
                mapping=MAPPINGS / "0xknxwledge_candles_1h.yaml",
            )
            for coin in ("ETH", "SOL"):
                ingest("coinglass-api", coin_files(coin), store, symbol=f"{coin}USDT")

        start = time.perf_counter()
        timed("shared 4 h set (BTC, ETH, SOL; README commands)", run)
        paths = [*btc, candles, *coin_files("ETH"), *coin_files("SOL")]
        _report(paths, store, time.perf_counter() - start)


def shared_1d() -> None:
    files = sorted((REAL / "Le1Ma1__CoinglassAutoPull" / "data_1d").glob("*.csv"))
    with tempfile.TemporaryDirectory() as tmp:
        store = MarketStore(Path(tmp))
        start = time.perf_counter()
        timed(
            "shared daily set (7 coins, 6 CSVs; README command)",
            lambda: ingest("table", files, store, mapping=MAPPINGS / "le1ma1_coinglass_1d.yaml"),
        )
        _report(files, store, time.perf_counter() - start)


WORKLOADS = {"snapshots": snapshots, "shared-4h": shared_4h, "shared-1d": shared_1d}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in WORKLOADS:
        WORKLOADS[sys.argv[1]]()
        return
    for name in WORKLOADS:
        if name.startswith("shared") and not (REAL / "MANIFEST.json").is_file():
            print(f"{name}: skipped, no shared data at {REAL}", flush=True)
            continue
        subprocess.run([sys.executable, "-m", "benchmarks.bench_ingest_history", name], check=True)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)


if __name__ == "__main__":
    main()
