"""Print the side-by-side stylized-facts tables of docs/simulator_calibration.md.

    python -m flushcast.simulator.calibration [REAL_DATA_DIR] [--days 365] [--seed 7]

Real facts come from the shared real data: Coinalyze hourly BTC/ETH/SOL (2024-06-20 -> 08-20)
and Binance/Bybit funding histories, read by the project's own adapters; the CoinGlass API 4 h
snapshot (2025-01 -> 06-30) and a user's daily CoinGlass export (2020-12-23 -> 2023), read
here as they are (the 4 h and daily adapters of issue 16 are not in this package). Simulated
facts come from the default scenario at the same bar size. Both go through `stylized_facts`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from flushcast.simulator.simulate import simulate
from flushcast.simulator.stylized_facts import (
    FLUSH_TOLERANCES,
    TOLERANCES,
    flush_facts,
    funding_facts,
    stylized_facts,
)

COINALYZE = "denizyts__Coinalyze-Backtester/src/csvFolder"
PAKCHU_BTC = "pakchu__rllm/data/binance_um_btcusdt_funding_marks_2020_2023.csv.gz"
SUPERVIK = "supervik__historical-funding-rates-fetcher/data"
COINGLASS_4H = "FelipeODonnell__liquidity-report/data/20250630/futures"
COINGLASS_4H_COINS = ("BTC", "ETH", "SOL", "XRP")
COINGLASS_1D = "Le1Ma1__CoinglassAutoPull/data_1d"
COINGLASS_1D_FROM = "2020-12-23"
"""Zeros before this day in the daily export mean "not collected" (see the data README)."""


def coinalyze_hourly(root: Path) -> pd.DataFrame:
    """Coinalyze hourly BTC, ETH, SOL perps as one canonical frame."""
    from flushcast.marketdata.ingest import read_canonical

    folder = root / COINALYZE
    frames = [
        # Coinalyze's hourly exports are naive UTC+6 (see the data README).
        read_canonical("coinalyze", sorted(folder.glob(f"{coin}USDT_PERP.A_*.csv")), tz="+06:00")
        for coin in ("BTC", "ETH", "SOL")
    ]
    return pd.concat(frames, ignore_index=True)


def funding_histories(root: Path) -> list[pd.Series]:
    """The five Binance/Bybit funding histories (pakchu BTC, supervik BTC and ETH)."""
    from flushcast.marketdata.ingest import read_sources

    sources = read_sources("funding-csv", [root / PAKCHU_BTC])
    # supervik's Binance and Bybit dates are naive UTC+3 (see the data README).
    supervik = sorted((root / SUPERVIK).glob("*/*_b[iy]*_funding_history.csv"))
    sources += read_sources("funding-csv", supervik, tz="+03:00")
    return [s.data.set_index("timestamp")["funding_rate"].rename(s.symbol) for s in sources]


def coinglass_4h(root: Path) -> pd.DataFrame:
    """CoinGlass API v4 4 h bars (snapshot of 2025-06-30): liquidations, OI, funding per coin.

    The snapshot's last bar was still forming and is dropped; funding is percent per 8 h.
    """
    folder = root / COINGLASS_4H
    frames = []
    for coin in COINGLASS_4H_COINS:
        parts = {
            "liq": f"liquidation/api_futures_liquidation_aggregated_coin_history_{coin}",
            "oi": f"open_interest/api_futures_openInterest_ohlc_aggregated_history_{coin}",
            "funding": f"funding_rate/api_futures_fundingRate_oi_weight_ohlc_history_{coin}",
        }
        data = {
            k: pd.read_parquet(folder / f"{v}.parquet").set_index("time") for k, v in parts.items()
        }
        bars = pd.DataFrame(
            {
                "liq_long_usd": data["liq"]["aggregated_long_liquidation_usd"],
                "liq_short_usd": data["liq"]["aggregated_short_liquidation_usd"],
                "oi_usd": data["oi"]["close"],
                "funding_rate": data["funding"]["close"].astype(float) / 100.0,
            }
        ).astype(float)
        bars = bars.iloc[:-1]
        bars.index = pd.to_datetime(bars.index, unit="ms", utc=True)
        frames.append(bars.rename_axis("timestamp").reset_index().assign(symbol=coin))
    return pd.concat(frames, ignore_index=True).assign(venue="coinglass")


def coinglass_daily(root: Path) -> pd.DataFrame:
    """The daily CoinGlass export: liquidations, total OI (USD), funding, per coin."""
    folder = root / COINGLASS_1D
    keys = ["symbol", "timestamp"]

    def read(name: str, columns: list[str]) -> pd.DataFrame:
        d = pd.read_csv(folder / f"{name}.csv", usecols=["symbol", "ts_utc", *columns])
        d["timestamp"] = pd.to_datetime(d.pop("ts_utc"), utc=True, format="ISO8601")
        return d.set_index(keys)

    bars = read("liquidation_agg_1d", ["liq_long_usd", "liq_short_usd"]).join(
        [
            read("futures_oi_agg_1d", ["oi_total_close"]),
            read("funding_oi_weight_1d", ["funding_close"]),
        ],
        how="inner",
    )
    bars = bars.reset_index()
    bars = bars[bars["timestamp"] >= pd.Timestamp(COINGLASS_1D_FROM, tz="UTC")]
    return bars.assign(
        oi_usd=bars.pop("oi_total_close"),
        funding_rate=bars.pop("funding_close") / 100.0,
        venue="coinglass",
    )


def real_facts(root: Path) -> pd.DataFrame:
    """Hourly facts of the real samples: one row per Coinalyze symbol, one per funding history."""
    facts = stylized_facts(coinalyze_hourly(root)).droplevel("venue")
    rows = {
        f"{r.name} funding #{i}": funding_facts(r) for i, r in enumerate(funding_histories(root))
    }
    return pd.concat([facts, pd.DataFrame.from_dict(rows, orient="index")])


def real_flush_facts(root: Path) -> dict[str, pd.DataFrame]:
    """Flush facts of the real sets per bar size."""
    return {
        "1h": flush_facts(coinalyze_hourly(root), "1h").droplevel("venue"),
        "4h": flush_facts(coinglass_4h(root), "4h").droplevel("venue"),
        "1d": flush_facts(coinglass_daily(root), "1d").droplevel("venue"),
    }


def table(real: pd.DataFrame, sim: pd.DataFrame, tolerances: dict) -> str:
    """Markdown: one line per fact, real range, simulated per symbol, tolerance."""
    lines = [
        "| fact | real (min - max) | "
        + " | ".join(f"sim {s}" for s in sim.index)
        + " | tolerance |",
        "|---" * (3 + len(sim)) + "|",
    ]
    for fact, (lo, hi) in tolerances.items():
        r = real[fact].dropna()
        cells = " | ".join(f"{v:.3g}" for v in sim[fact])
        lines.append(f"| {fact} | {r.min():.3g} - {r.max():.3g} | {cells} | [{lo:g}, {hi:g}] |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", nargs="?", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    hourly = simulate("default", days=args.days, seed=args.seed)
    print("hourly\n")
    print(table(real_facts(args.real), stylized_facts(hourly.frame).droplevel("venue"), TOLERANCES))
    real = real_flush_facts(args.real)
    for bar, tolerances in FLUSH_TOLERANCES.items():
        frame = simulate("default", days=args.days, seed=args.seed, bar=bar).frame
        print(f"\nflush facts, {bar} bars\n")
        print(table(real[bar], flush_facts(frame, bar).droplevel("venue"), tolerances))


if __name__ == "__main__":
    main()
