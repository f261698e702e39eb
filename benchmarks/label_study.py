"""The label study behind docs/label.md: every label variant on the simulator and the real sets.

    python -m benchmarks.label_study [--real ../shared/data/real] [--markdown]

For each data set, variant and horizon it prints: the flush base rate pooled and its spread
over symbols (max / min), episodes per 30 days, the known cascades caught, how well trailing
volatility alone predicts the label within weeks (the σ artefact: a label that calm markets
make easy is one a volatility thermometer forecasts), the persistence of weekly base rates
(the anti-persistence a trailing threshold imports), and on the simulator the share of logged
cascades the label finds.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flushcast.features.build import build_features
from flushcast.marketdata.schema import BAR
from flushcast.training.labels import LABELS, LabelSpec, flush_column, make_labels
from flushcast.training.metrics import within_blocks

HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class Known:
    """A cascade everyone remembers: which symbols, when (UTC day), which way."""

    day: str
    direction: str
    symbols: tuple[str, ...] = ()
    """Prefixes (`BTC`); empty means every symbol of the set."""


KNOWN: dict[str, tuple[Known, ...]] = {
    "coinalyze-1h": (Known("2024-08-05", "long_flush"),),
    "coinglass-4h": (
        Known("2025-02-03", "long_flush"),
        Known("2025-04-07", "long_flush"),
        Known("2024-12-09", "long_flush"),
    ),
    "coinglass-1d": (
        Known("2021-05-19", "long_flush"),
        Known("2022-05-12", "long_flush"),
        Known("2022-06-13", "long_flush"),
        Known("2022-11-09", "long_flush"),
        Known("2021-09-07", "long_flush"),
    ),
}


@dataclass
class DataSet:
    name: str
    frame: pd.DataFrame
    bar: pd.Timedelta
    horizons: tuple[int, ...]
    cascades: pd.DataFrame | None = None


def _caught(labels: pd.DataFrame, h: int, known: Iterable[Known], bar: pd.Timedelta) -> str:
    """`caught/total`: a cascade is caught on a symbol when a flush of its direction is
    labelled at a bar whose H-hour window covers part of the cascade's day."""
    hits, total = 0, 0
    for event in known:
        day = pd.Timestamp(event.day, tz="UTC")
        for symbol in labels["symbol"].astype(str).unique():
            if event.symbols and not symbol.startswith(event.symbols):
                continue
            rows = labels[labels["symbol"].astype(str) == symbol]
            window = rows[
                (rows["timestamp"] + bar + h * HOUR > day)
                & (rows["timestamp"] + bar <= day + pd.Timedelta(days=1))
            ]
            if window[flush_column(h)].isna().all():
                continue  # not labelled there (too early in the series, or a gap)
            total += 1
            directions = window.loc[window[flush_column(h)] == 1, f"direction_{h}h"].astype(str)
            hits += int((directions == event.direction).any())
    return f"{hits}/{total}" if total else "–"


def _persistence(labels: pd.DataFrame, h: int) -> float:
    """Correlation of each symbol's weekly flush rate with its previous four weeks' rate."""
    frame = labels[["timestamp", "symbol", flush_column(h)]].dropna()
    frame = frame.assign(week=frame["timestamp"].dt.floor("7D"))
    weekly = frame.groupby(["symbol", "week"], observed=True)[flush_column(h)].mean()
    pairs = []
    for _, series in weekly.groupby(level=0, observed=True):
        values = series.to_numpy()
        trailing = pd.Series(values).rolling(4).mean().shift(1).to_numpy()
        pairs.append(np.column_stack([values, trailing]))
    both = np.vstack(pairs) if pairs else np.empty((0, 2))
    both = both[np.isfinite(both).all(axis=1)]
    if len(both) < 8 or both[:, 0].std() == 0 or both[:, 1].std() == 0:
        return float("nan")
    return float(np.corrcoef(both[:, 0], both[:, 1])[0, 1])


def _recovered(labels: pd.DataFrame, h: int, cascades: pd.DataFrame, bar: pd.Timedelta) -> float:
    """Share of the simulator's logged cascades with a flush label whose window covers it."""
    found = 0
    for cascade in cascades.itertuples():
        start = pd.Timestamp(cascade.start)
        rows = labels[labels["symbol"].astype(str) == cascade.symbol]
        window = rows[(rows["timestamp"] < start) & (rows["timestamp"] + bar + h * HOUR > start)]
        found += int((window[flush_column(h)] == 1).any())
    return found / len(cascades) if len(cascades) else float("nan")


def study(data: DataSet, variants: dict[str, LabelSpec]) -> pd.DataFrame:
    """One row per variant and horizon (see the module docstring for the columns)."""
    features = build_features(data.frame, bar=data.bar)
    keys = ["timestamp", "symbol", "venue"]
    volatility = features[[*keys, "rv_72h_pct"]].astype({"symbol": str, "venue": str})
    rows = []
    for name, variant in variants.items():
        spec = LabelSpec.model_validate({**variant.model_dump(), "horizons": data.horizons})
        try:
            labels = make_labels(data.frame, spec, bar=data.bar)
        except Exception as exc:  # a variant a set cannot express (no OI): say so
            rows.append({"data": data.name, "label": name, "H": "all", "base rate": str(exc)})
            continue
        merged = labels.astype({"symbol": str, "venue": str}).merge(volatility, on=keys)
        for h in data.horizons:
            column = flush_column(h)
            known = merged[merged[column].notna()]
            per_symbol = known.groupby("symbol")[column].mean()
            y = known[column].to_numpy()
            episodes = (
                known.sort_values(["symbol", "timestamp"])
                .groupby("symbol")[column]
                .apply(lambda s: int(((s == 1) & (s.shift(fill_value=0) != 1)).sum()))
            )
            span_days = (
                known.groupby("symbol")["timestamp"].agg(lambda t: (t.max() - t.min()).days).sum()
            )
            vol = known["rv_72h_pct"].to_numpy()
            usable = np.isfinite(vol)
            weeks = (known["timestamp"] - known["timestamp"].min()) // pd.Timedelta(days=7)
            calm_wins = within_blocks(y[usable], -vol[usable], weeks.to_numpy()[usable])
            row = {
                "data": data.name,
                "label": name,
                "H": h,
                "base rate": f"{y.mean():.2%}",
                "symbol spread": f"{per_symbol.max() / max(per_symbol.min(), 1e-9):.1f}×"
                if per_symbol.min() > 0
                else "∞",
                "episodes / 30 d": f"{30 * episodes.sum() / max(span_days, 1):.1f}",
                "known caught": _caught(labels, h, KNOWN.get(data.name, ()), data.bar),
                "ROC of calm (−σ72h) in week": f"{calm_wins.roc_auc:.2f}",
                "weekly persistence": f"{_persistence(labels, h):+.2f}",
            }
            if data.cascades is not None:
                row["sim cascades found"] = f"{_recovered(labels, h, data.cascades, data.bar):.0%}"
            rows.append(row)
    return pd.DataFrame(rows)


def simulated(days: int = 730, seed: int = 7) -> DataSet:
    from flushcast.simulator import simulate

    result = simulate("default", ["BTCUSDT", "ETHUSDT", "SOLUSDT"], days=days, seed=seed)
    return DataSet("simulator-1h", result.frame, BAR, (4, 12, 24), result.cascades)


def coinalyze(real: Path) -> DataSet | None:
    from flushcast.marketdata.ingest import ingest
    from flushcast.marketdata.store import MarketStore

    folder = real / "denizyts__Coinalyze-Backtester/src/csvFolder"
    if not folder.is_dir():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        store = MarketStore(tmp)
        for coin in ("BTC", "ETH", "SOL"):
            files = sorted(folder.glob(f"{coin}USDT_PERP.A_*.csv"))
            ingest("coinalyze", files, store, tz="+06:00")
        frame = store.read()
    return DataSet("coinalyze-1h", frame, BAR, (4, 12, 24))


def stored(name: str, store: Path, horizons: tuple[int, ...]) -> DataSet | None:
    """A set already ingested into a store (the README's commands for the 4 h and daily sets)."""
    from flushcast.marketdata.store import MarketStore

    market = MarketStore(store)
    if not market.datasets():
        return None
    return DataSet(name, market.read(), market.common_bar(), horizons)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--store-4h", type=Path, help="store of the shared 4 h CoinGlass set")
    parser.add_argument("--store-1d", type=Path, help="store of the shared daily CoinGlass set")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    args = parser.parse_args()
    sets = [simulated(), coinalyze(args.real)]
    if args.store_4h:
        sets.append(stored("coinglass-4h", args.store_4h, (4, 12, 24)))
    if args.store_1d:
        sets.append(stored("coinglass-1d", args.store_1d, (24, 72)))
    tables = [study(data, LABELS) for data in sets if data is not None]
    table = pd.concat(tables, ignore_index=True).fillna("")
    if args.markdown:
        print(markdown(table))
    else:
        with pd.option_context("display.width", 250, "display.max_columns", 20):
            print(table.to_string(index=False))


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (pandas' own needs the tabulate package)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |"]
    lines.append("|" + "---|" * len(table.columns))
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
