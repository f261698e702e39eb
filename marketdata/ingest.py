"""The ingest pipeline: files → adapter → series bar → check → merge with the store → write.

Everything is read, checked, merged and validated before the store is touched, and the store
switches atomically, so a bad file (or a conflict with what is stored) leaves the store
unchanged. The read-merge-write cycle holds the store's writer lock: two ingests into one store
run one after the other and keep each other's rows. Every error names the file, its line and the
column.
"""

from __future__ import annotations

import importlib
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from flushcast.common.errors import DataError
from flushcast.common.progress import progress
from flushcast.marketdata.merge import PART, STORED, BarMerger, Revision, Source, funding_part
from flushcast.marketdata.resample import LINE, infer_bar, to_bar
from flushcast.marketdata.schema import BAR, PRICE_COLUMNS, STORED_BARS, bar_name, conform
from flushcast.marketdata.sources import Adapter, SourceFrame
from flushcast.marketdata.store import MarketStore
from flushcast.marketdata.validate import Gap, Locate, check_values, validate


@dataclass(frozen=True)
class SourceKind:
    """A SOURCE of `flushcast ingest`: the module whose `read` handles it, and the options it
    takes beyond symbol, tz and venue."""

    module: str
    options: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


SOURCES: dict[str, SourceKind] = {
    "coinalyze": SourceKind("flushcast.marketdata.adapters.coinalyze"),
    "coinglass": SourceKind("flushcast.marketdata.adapters.coinglass"),
    "coinglass-api": SourceKind(
        "flushcast.marketdata.adapters.coinglass_api", options=("series", "keep_last", "as_of")
    ),
    "binance-vision": SourceKind("flushcast.marketdata.adapters.binance_vision"),
    "liquidation-events": SourceKind("flushcast.marketdata.adapters.liquidation_events"),
    "funding-csv": SourceKind("flushcast.marketdata.adapters.funding_csv"),
    "table": SourceKind(
        "flushcast.marketdata.adapters.table", options=("mapping",), required=("mapping",)
    ),
    "canonical": SourceKind("flushcast.marketdata.adapters.canonical"),
}
"""SOURCE names accepted by `flushcast ingest`."""

ADAPTERS: dict[str, str] = {name: kind.module for name, kind in SOURCES.items()}


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
    bar: pd.Timedelta = BAR
    dropped_incomplete: int = 0
    dropped_without_price: int = 0
    revisions: list[Revision] = field(default_factory=list)
    """Where new values superseded stored or older ones (snapshot revisions, `replace`)."""


@dataclass
class IngestReport:
    datasets: list[DatasetReport] = field(default_factory=list)


def adapter_for(source: str) -> Adapter:
    if source not in SOURCES:
        raise DataError(f"unknown source '{source}': choose one of {', '.join(SOURCES)}")
    return importlib.import_module(SOURCES[source].module).read


def _check_options(source: str, options: dict[str, Any]) -> dict[str, Any]:
    kind = SOURCES[source]
    given = {k: v for k, v in options.items() if v not in (None, False)}
    for name in given:
        if name not in kind.options:
            flag = "--" + name.replace("_", "-")
            takers = [s for s, k in SOURCES.items() if name in k.options]
            raise DataError(f"{flag} applies to {', '.join(takers)} only, not to {source}")
    for name in kind.required:
        if name not in given:
            raise DataError(f"{source} needs --{name.replace('_', '-')}")
    return given


def read_sources(
    source: str,
    paths: Sequence[Path],
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
    **options: Any,
) -> list[SourceFrame]:
    """Run the adapter over every file; any failure becomes a DataError naming the file.

    A file that holds no data rows is an error too: an empty export is a failed download or a
    wrong filter, never "nothing happened".
    """
    read = adapter_for(source)
    extra = _check_options(source, options)
    frames: list[SourceFrame] = []
    for path in progress(list(paths), f"reading {source}"):
        path = Path(path)
        if not path.is_file():
            raise DataError("no such file", file=path)
        try:
            found = read(path, symbol=symbol, tz=tz, venue=venue, **extra)
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
        if not any(len(f.data) for f in found):
            raise DataError("the file holds no data rows", file=path, row=1)
        frames.extend(f for f in found if len(f.data))
    return frames


def _with_bar(frame: SourceFrame) -> SourceFrame:
    """The frame with its own bar known: declared by the format, else inferred once here."""
    if frame.kind != "bars" or frame.bar is not None:
        return frame
    return replace(frame, bar=infer_bar(frame.data["timestamp"], file=frame.where))


def _as_utc_us(data: pd.DataFrame) -> pd.DataFrame:
    return data.assign(timestamp=data["timestamp"].astype("datetime64[us, UTC]"))


def _concat_disjoint(
    parts: list[tuple[Source, pd.DataFrame]],
) -> list[tuple[list[Source], pd.DataFrame]]:
    """Join parts with the same columns and no shared bar (e.g. consecutive monthly archives)
    into one, so merging costs one join instead of one per file; overlapping parts stay apart
    so the merge still checks (or revises) them against each other."""
    groups: dict[tuple[str, ...], list[tuple[Source, pd.DataFrame]]] = defaultdict(list)
    for source, part in parts:
        groups[tuple(part.columns)].append((source, part))
    joined = []
    for group in groups.values():
        if len(group) == 1:
            joined.append(([group[0][0]], group[0][1]))
            continue
        combined = pd.concat(
            [part.assign(**{PART: i}) for i, (_, part) in enumerate(group)], ignore_index=True
        )
        if combined["timestamp"].is_unique:
            joined.append(([source for source, _ in group], combined))
        else:
            joined.extend(([source], part) for source, part in group)
    return joined


def _series_bar(
    symbol: str,
    venue: str,
    frames: list[SourceFrame],
    stored_bar: pd.Timedelta | None,
    requested: pd.Timedelta | None,
) -> pd.Timedelta:
    """The bar a series is stored at: the one it has, else the requested one, else the
    sources' own (finer than an hour: hourly). Bars change only on request, never silently."""
    names = ", ".join(bar_name(b) for b in STORED_BARS)
    if requested is not None and requested not in STORED_BARS:
        raise DataError(f"--bar {bar_name(requested)}: a series is stored at one of {names}")
    if stored_bar is not None:
        if requested is not None and requested != stored_bar:
            raise DataError(
                f"{symbol} on {venue} is stored at {bar_name(stored_bar)} bars; --bar "
                f"{bar_name(requested)} would change them (ingest into another store instead)"
            )
        return stored_bar
    if requested is not None:
        return requested
    native: dict[pd.Timedelta, str] = {}
    for frame in frames:
        if frame.kind == "bars":
            own = frame.bar
            native.setdefault(BAR if own < BAR else own, frame.where)
    if len(native) > 1:
        listing = ", ".join(f"{bar_name(b)} ({where})" for b, where in sorted(native.items()))
        raise DataError(
            f"sources of {symbol} on {venue} come at different bars: {listing}; pass --bar with "
            "the coarsest to aggregate the finer ones"
        )
    bar = next(iter(native), BAR)
    if bar not in STORED_BARS:
        raise DataError(
            f"{bar_name(bar)} bars cannot be stored ({names}): pass --bar to aggregate them",
            file=next(iter(native.values())),
            column="timestamp",
        )
    return bar


def _part_locator(sources: Sequence[Source], part: pd.DataFrame) -> Locate:
    """(position, column) -> (file, line) for a part concatenated from `sources`."""
    lines = part[LINE].to_numpy() if LINE in part.columns else None
    which = part[PART].to_numpy() if PART in part.columns else None

    def where(pos: int, column: str) -> tuple[str | None, int | None]:
        source = sources[0 if which is None else int(which[pos])]
        line = -1 if lines is None else int(lines[pos])
        return source.file, line if line >= 0 else None

    return where


def _snapshot_record(source: Source, part: pd.DataFrame) -> dict:
    columns = [c for c in part.columns if c not in ("timestamp", LINE) and part[c].notna().any()]
    return {
        "source": source.name,
        "series": source.series,
        "as_of": source.as_of.isoformat() if source.as_of is not None else None,
        "columns": columns,
        "first": part["timestamp"].min().isoformat(),
        "last": part["timestamp"].max().isoformat(),
    }


def _dedupe(items: list) -> list:
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _no_price(symbol: str, venue: str) -> DataError:
    return DataError(
        f"no price bars for {symbol} on {venue}: ingest a price source (OHLC) for it first; "
        "liquidation and funding sources fill columns of existing bars"
    )


def _merge_stored(merger: BarMerger, stored: pd.DataFrame, snapshots: list[dict]) -> None:
    """The stored rows first, each cell marked with the snapshot that supplied it (if any), so
    a newer snapshot can supersede it and an older one cannot."""
    values = stored.drop(columns=["symbol", "venue"]).dropna(axis="columns", how="all")
    merger.add(Source(STORED), _as_utc_us(values))
    for record in sorted(snapshots, key=lambda r: r["as_of"] or ""):
        source = Source(
            record["source"],
            series=record["series"],
            as_of=pd.Timestamp(record["as_of"]) if record["as_of"] else None,
        )
        first, last = pd.Timestamp(record["first"]), pd.Timestamp(record["last"])
        merger.claim(source, record["columns"], first, last)


def _bar_part(
    frame: SourceFrame, bar: pd.Timedelta, replace: bool
) -> tuple[Source, pd.DataFrame, pd.DataFrame | None, int]:
    """One bars frame at the series' bar: its source, the part to merge, the part of coin
    amounts still to be valued at the series' close (or None), and the incomplete bars dropped."""
    data = _as_utc_us(frame.data)
    coins = [c for c in frame.coin_columns if c in data.columns]
    if coins and "close" in data.columns:
        # Valued at the close of the file's own bar, before aggregating.
        data = data.assign(**{c: data[c] * data["close"] for c in coins})
        coins = []
    part, dropped = to_bar(data, bar=bar, source_bar=frame.bar, file=frame.where)
    source = Source(
        frame.name, file=frame.where, series=frame.series, as_of=frame.as_of, replace=replace
    )
    coin_part = None
    if coins:
        lines = [LINE] if LINE in part.columns else []
        coin_part = part[["timestamp", *coins, *lines]]
        part = part.drop(columns=coins)
    return source, part, coin_part, dropped


def _assemble(
    symbol: str,
    venue: str,
    frames: list[SourceFrame],
    stored: pd.DataFrame | None,
    stored_provenance: dict,
    bar: pd.Timedelta,
    replace: bool = False,
) -> tuple[pd.DataFrame, DatasetReport, dict]:
    """Merge one series' new source frames with its stored rows into canonical bars.

    Order: stored rows, then bar parts (prices first in effect: a part is checked cell by cell
    before it is merged), then coin amounts valued at the merged close, then funding settlements
    laid on the merged bars.
    """
    merger = BarMerger()
    stored_sources = stored_provenance.get("columns", {})
    snapshots = list(stored_provenance.get("snapshots", []))
    if stored is not None and not stored.empty:
        _merge_stored(merger, stored, snapshots)
    dropped_incomplete = 0
    bar_parts: list[tuple[Source, pd.DataFrame]] = []
    coin_parts: list[tuple[Source, pd.DataFrame]] = []
    for frame in frames:
        if frame.kind != "bars":
            continue
        source, part, coin_part, dropped = _bar_part(frame, bar, replace)
        dropped_incomplete += dropped
        if frame.series is not None and len(part):
            snapshots.append(_snapshot_record(source, part))
        if coin_part is not None:
            coin_parts.append((source, coin_part))
        if [c for c in part.columns if c not in ("timestamp", LINE)]:
            bar_parts.append((source, part))
    for sources, part in _concat_disjoint(bar_parts):
        check_values(part, bar=bar, locate=_part_locator(sources, part))
        merger.add(sources, part)
    if not (set(PRICE_COLUMNS) <= set(merger.bars.columns)):
        raise _no_price(symbol, venue)
    for source, part in coin_parts:
        check_values(part, bar=bar, locate=_part_locator([source], part))
        close = merger.bars.set_index("timestamp")["close"].reindex(part["timestamp"]).to_numpy()
        values = [c for c in part.columns if c not in ("timestamp", LINE)]
        merger.add(source, part.assign(**{c: part[c].to_numpy() * close for c in values}))
    for frame in frames:
        if frame.kind == "funding":
            part = funding_part(_as_utc_us(frame.data), merger.bars["timestamp"], bar)
            source = Source(frame.name, file=frame.where, replace=replace)
            check_values(part, bar=bar, locate=_part_locator([source], part))
            merger.add(source, part)
    # Rows already stored keep the source names recorded when they were first ingested.
    sources = {
        col: _dedupe(
            [s for n in names for s in (stored_sources.get(col, [n]) if n == STORED else [n])]
        )
        for col, names in merger.sources.items()
    }
    bars = merger.bars
    has_price = bars.reindex(columns=list(PRICE_COLUMNS)).notna().all(axis=1).to_numpy()
    if not has_price.any():
        raise _no_price(symbol, venue)
    frame = conform(bars[has_price].assign(symbol=symbol, venue=venue))
    gaps = validate(frame, bar=bar, locate=merger.locate(has_price)).gaps
    revisions = [r for r in merger.revisions if r.bars_compared]
    report = DatasetReport(
        symbol=symbol,
        venue=venue,
        rows=len(frame),
        start=frame["timestamp"].iat[0],
        end=frame["timestamp"].iat[-1],
        gaps=gaps,
        sources=sources,
        bar=bar,
        dropped_incomplete=dropped_incomplete,
        dropped_without_price=int((~has_price).sum()),
        revisions=revisions,
    )
    provenance = {**stored_provenance, "columns": sources}
    if snapshots:
        provenance["snapshots"] = _dedupe(snapshots)
    changes = [r.as_record() for r in revisions if r.bars_changed]
    if changes or "revisions" in stored_provenance:
        provenance["revisions"] = _dedupe([*stored_provenance.get("revisions", []), *changes])
    return frame, report, provenance


def _group(frames: list[SourceFrame]) -> dict[tuple[str, str], list[SourceFrame]]:
    groups: dict[tuple[str, str], list[SourceFrame]] = defaultdict(list)
    for frame in frames:
        groups[(frame.symbol, frame.venue)].append(frame)
    return groups


def _build(
    frames: list[SourceFrame],
    store: MarketStore | None,
    *,
    bar: pd.Timedelta | None = None,
    replace: bool = False,
) -> tuple[pd.DataFrame, IngestReport, dict[tuple[str, str], dict], dict]:
    frames = [_with_bar(f) for f in frames]
    reports, assembled, provenance, bars = [], [], {}, {}
    stored_bars = {(d.symbol, d.venue): d.bar for d in store.datasets()} if store else {}
    for (symbol, venue), group in sorted(_group(frames).items()):
        key = (symbol, venue)
        stored = store.read([symbol], venue) if key in stored_bars else None
        stored_provenance = store.provenance(symbol, venue) if key in stored_bars else {}
        try:
            series_bar = _series_bar(symbol, venue, group, stored_bars.get(key), bar)
            frame, report, prov = _assemble(
                symbol, venue, group, stored, stored_provenance, series_bar, replace
            )
        except DataError as exc:
            names = ", ".join(dict.fromkeys(f.where for f in group))
            series = f"{symbol} on {venue}"
            raise DataError(
                exc.problem if series in exc.problem else f"{series}: {exc.problem}",
                file=exc.file or names,
                row=exc.row,
                column=exc.column,
            ) from exc
        reports.append(report)
        assembled.append(frame)
        provenance[key] = prov
        bars[key] = series_bar
    if not assembled:
        raise DataError("the files held no rows")
    return pd.concat(assembled, ignore_index=True), IngestReport(reports), provenance, bars


def read_canonical(
    source: str,
    paths: Sequence[Path],
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
    bar: pd.Timedelta | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Read files into a validated canonical frame without storing it (tests, notebooks)."""
    frames = read_sources(source, paths, symbol=symbol, tz=tz, venue=venue, **options)
    frame, _, _, _ = _build(frames, None, bar=bar)
    return frame.sort_values(["symbol", "venue", "timestamp"], kind="stable").reset_index(drop=True)


def ingest(
    source: str,
    paths: Sequence[Path],
    store: MarketStore,
    *,
    symbol: str | None = None,
    tz: str | None = None,
    venue: str | None = None,
    bar: pd.Timedelta | None = None,
    replace: bool = False,
    **options: Any,
) -> IngestReport:
    """Read files, merge them with what the store holds for the same series, and write back.

    `bar` asks for the series to be stored at that bar (finer sources are aggregated into it);
    `replace` lets the files supersede stored values where they overlap (a corrected export).
    Re-ingesting the same files is idempotent: the store keeps every byte.
    """
    frames = read_sources(source, paths, symbol=symbol, tz=tz, venue=venue, **options)
    return ingest_frames(frames, store, bar=bar, replace=replace)


def ingest_frames(
    frames: Sequence[SourceFrame],
    store: MarketStore,
    *,
    bar: pd.Timedelta | None = None,
    replace: bool = False,
) -> IngestReport:
    """Merge source frames (read from files, or collected live) into the store, all or none.

    The writer lock is held from reading the stored series to committing, so two writers never
    lose each other's rows.
    """
    with store.locked():
        frame, report, provenance, bars = _build(list(frames), store, bar=bar, replace=replace)
        store.write(frame, provenance, bar=bars)
    return report
