"""The ingest pipeline: files → adapter → canonical bar → merge with the store → validate → write.

Everything is read, merged and validated before the store is touched, and the store writes
atomically, so a bad file (or a conflict with what is stored) leaves the store unchanged.
"""

from __future__ import annotations

import importlib
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from flushcast.progress import progress
from marketdata.errors import DataError
from marketdata.merge import BarMerger, funding_on_bars
from marketdata.resample import to_bar
from marketdata.schema import BAR, PRICE_COLUMNS, conform, empty_frame
from marketdata.sources import Adapter, SourceFrame
from marketdata.store import MarketStore
from marketdata.validate import Gap, validate

ADAPTERS: dict[str, str] = {
    "coinalyze": "marketdata.adapters.coinalyze",
    "coinglass": "marketdata.adapters.coinglass",
    "binance-vision": "marketdata.adapters.binance_vision",
    "liquidation-events": "marketdata.adapters.liquidation_events",
    "funding-csv": "marketdata.adapters.funding_csv",
}
"""SOURCE names accepted by `flushcast ingest`, and the module whose `read` handles each."""

STORED = "store"
"""Source name of the rows already in the store when new files are merged in."""


@dataclass
class DatasetReport:
    """What an ingest did to one (symbol, venue) dataset."""

    symbol: str
    venue: str
    rows: int
    start: pd.Timestamp
    end: pd.Timestamp
    gaps: list[Gap]
    sources: dict[str, list[str]]
    dropped_incomplete: int = 0
    dropped_without_price: int = 0


@dataclass
class IngestReport:
    datasets: list[DatasetReport] = field(default_factory=list)


def adapter_for(source: str) -> Adapter:
    if source not in ADAPTERS:
        raise DataError(f"unknown source '{source}': choose one of {', '.join(ADAPTERS)}")
    return importlib.import_module(ADAPTERS[source]).read


def read_sources(
    source: str,
    paths: Sequence[Path],
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
) -> list[SourceFrame]:
    """Run the adapter over every file; any failure becomes a DataError naming the file."""
    read = adapter_for(source)
    frames: list[SourceFrame] = []
    for path in progress(list(paths), f"reading {source}"):
        path = Path(path)
        if not path.is_file():
            raise DataError("no such file", file=path)
        try:
            frames.extend(read(path, symbol=symbol, tz=tz, venue=venue))
        except DataError:
            raise
        except (
            ValueError,
            KeyError,
            IndexError,
            TypeError,
            OSError,
            UnicodeDecodeError,
            zipfile.BadZipFile,
        ) as exc:
            # A safety net: adapters raise DataError themselves; anything else still names the file.
            raise DataError(f"cannot read as {source}: {exc}", file=path) from exc
    return frames


def _as_utc_us(data: pd.DataFrame) -> pd.DataFrame:
    return data.assign(timestamp=data["timestamp"].astype("datetime64[us, UTC]"))


def _concat_disjoint(
    parts: list[tuple[str, pd.DataFrame]],
) -> list[tuple[list[str], pd.DataFrame]]:
    """Join parts with the same columns and no shared bar (e.g. consecutive monthly archives)
    into one, so merging costs one join instead of one per file; overlapping parts stay apart
    so the merge still checks them against each other."""
    groups: dict[tuple[str, ...], list[tuple[str, pd.DataFrame]]] = defaultdict(list)
    for name, part in parts:
        groups[tuple(part.columns)].append((name, part))
    joined = []
    for group in groups.values():
        combined = pd.concat([part for _, part in group], ignore_index=True)
        if combined["timestamp"].is_unique:
            joined.append(([name for name, _ in group], combined))
        else:
            joined.extend(([name], part) for name, part in group)
    return joined


def _assemble(
    symbol: str,
    venue: str,
    frames: list[SourceFrame],
    stored: pd.DataFrame,
    stored_sources: dict[str, list[str]],
) -> tuple[pd.DataFrame, DatasetReport]:
    """Merge one series' new source frames with its stored rows into canonical bars."""
    merger = BarMerger()
    if not stored.empty:
        values = stored.drop(columns=["symbol", "venue"]).dropna(axis="columns", how="all")
        merger.add(STORED, _as_utc_us(values))
    dropped_incomplete = 0
    bar_parts = []
    for frame in frames:
        if frame.kind == "bars":
            bars, dropped = to_bar(_as_utc_us(frame.data), bar=BAR, file=frame.name)
            dropped_incomplete += dropped
            bar_parts.append((frame.name, bars))
    for names, bars in _concat_disjoint(bar_parts):
        merger.add(names, bars)
    for frame in frames:
        if frame.kind == "funding":
            opens = merger.bars["timestamp"]
            rates = funding_on_bars(_as_utc_us(frame.data), opens)
            merger.add(frame.name, pd.DataFrame({"timestamp": opens, "funding_rate": rates}))
    # Rows already stored keep the source names recorded when they were first ingested.
    sources = {
        col: [s for n in names for s in (stored_sources.get(col, [n]) if n == STORED else [n])]
        for col, names in merger.sources.items()
    }
    bars = merger.bars
    has_price = bars.reindex(columns=list(PRICE_COLUMNS)).notna().all(axis=1)
    if not has_price.any():
        raise DataError(
            f"no price bars for {symbol} on {venue}: ingest a price source (OHLC) for it first; "
            "liquidation and funding sources fill columns of existing bars"
        )
    frame = conform(bars[has_price].assign(symbol=symbol, venue=venue))
    report = DatasetReport(
        symbol=symbol,
        venue=venue,
        rows=len(frame),
        start=frame["timestamp"].iat[0],
        end=frame["timestamp"].iat[-1],
        gaps=[],
        sources=sources,
        dropped_incomplete=dropped_incomplete,
        dropped_without_price=int((~has_price).sum()),
    )
    return frame, report


def _group(frames: list[SourceFrame]) -> dict[tuple[str, str], list[SourceFrame]]:
    groups: dict[tuple[str, str], list[SourceFrame]] = defaultdict(list)
    for frame in frames:
        groups[(frame.symbol, frame.venue)].append(frame)
    return groups


def _build(
    frames: list[SourceFrame], store: MarketStore | None
) -> tuple[pd.DataFrame, IngestReport, dict[tuple[str, str], dict]]:
    reports, assembled, provenance = [], [], {}
    for (symbol, venue), group in sorted(_group(frames).items()):
        stored = store.read([symbol], venue) if store is not None else empty_frame()
        stored_sources = store.provenance(symbol, venue).get("columns", {}) if store else {}
        try:
            frame, report = _assemble(symbol, venue, group, stored, stored_sources)
        except DataError as exc:
            names = ", ".join(f.name for f in group)
            raise DataError(
                f"{symbol} on {venue}: {exc.problem}",
                file=exc.file or names,
                row=exc.row,
                column=exc.column,
            ) from exc
        report.gaps = validate(frame).gaps
        reports.append(report)
        assembled.append(frame)
        provenance[(symbol, venue)] = {"columns": report.sources}
    if not assembled:
        raise DataError("the files held no rows")
    return pd.concat(assembled, ignore_index=True), IngestReport(reports), provenance


def read_canonical(
    source: str,
    paths: Sequence[Path],
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
) -> pd.DataFrame:
    """Read files into a validated canonical frame without storing it (tests, notebooks)."""
    frame, _, _ = _build(read_sources(source, paths, symbol=symbol, tz=tz, venue=venue), None)
    return frame.sort_values(["symbol", "venue", "timestamp"], kind="stable").reset_index(drop=True)


def ingest(
    source: str,
    paths: Sequence[Path],
    store: MarketStore,
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
) -> IngestReport:
    """Read files, merge them with what the store holds for the same series, and write back.

    Re-ingesting the same files is idempotent: identical values agree with themselves.
    """
    frames = read_sources(source, paths, symbol=symbol, tz=tz, venue=venue)
    frame, report, provenance = _build(frames, store)
    store.write(frame, provenance)
    return report
