"""The local store: canonical frames as Parquet, one dataset per (symbol, venue).

Layout: `ROOT/<venue>/<symbol>.parquet`. Every write is validated first and then staged as
temporary files that are renamed into place only after all of them were written, so a failed
ingest leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from marketdata.atomic import atomic_path
from marketdata.errors import DataError
from marketdata.schema import COLUMNS, conform, empty_frame
from marketdata.validate import ValidationReport, validate

_META_KEY = b"flushcast"


@dataclass(frozen=True)
class Dataset:
    """One stored series: a symbol on a venue."""

    symbol: str
    venue: str
    path: Path


class MarketStore:
    """A folder of canonical frames. Cheap to create; reads nothing until asked."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, symbol: str, venue: str) -> Path:
        return self.root / venue / f"{symbol}.parquet"

    def datasets(self) -> list[Dataset]:
        if not self.root.is_dir():
            return []
        return [
            Dataset(symbol=p.stem, venue=p.parent.name, path=p)
            for p in sorted(self.root.glob("*/*.parquet"))
        ]

    def read(self, symbols: list[str] | None = None, venue: str | None = None) -> pd.DataFrame:
        """All stored rows of the chosen symbols (and venue), sorted as the schema wants."""
        chosen = [
            d
            for d in self.datasets()
            if (symbols is None or d.symbol in symbols) and (venue is None or d.venue == venue)
        ]
        if not chosen:
            return empty_frame()
        frames = [pd.read_parquet(d.path) for d in chosen]
        return conform(pd.concat(frames, ignore_index=True))

    def provenance(self, symbol: str, venue: str) -> dict:
        """Where each column of a dataset came from, as recorded when it was written."""
        path = self.path(symbol, venue)
        if not path.is_file():
            return {}
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta.get(_META_KEY, b"{}"))

    def write(
        self, frame: pd.DataFrame, provenance: dict[tuple[str, str], dict] | None = None
    ) -> ValidationReport:
        """Replace the datasets present in `frame` with its rows, atomically.

        `frame` holds one or more (symbol, venue) series; each replaces the stored dataset of the
        same key whole (merging with what is stored is the caller's business, see `ingest`).
        """
        frame = conform(frame).sort_values(["symbol", "venue", "timestamp"], kind="stable")
        frame = frame.reset_index(drop=True)
        report = validate(frame)
        if frame.empty:
            raise DataError("nothing to write: the frame has no rows")
        provenance = provenance or {}
        groups = frame.groupby(["symbol", "venue"], observed=True, sort=True)
        staged: list[tuple[Path, Path]] = []
        try:
            for (symbol, venue), part in groups:
                target = self.path(str(symbol), str(venue))
                tmp = target.with_name(f".{target.name}.{os.getpid()}.staged")
                target.parent.mkdir(parents=True, exist_ok=True)
                table = pa.Table.from_pandas(part[list(COLUMNS)], preserve_index=False)
                meta = dict(table.schema.metadata or {})
                meta[_META_KEY] = json.dumps(provenance.get((str(symbol), str(venue)), {})).encode()
                pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
                staged.append((tmp, target))
            for tmp, target in staged:
                with atomic_path(target) as final_tmp:
                    os.replace(tmp, final_tmp)
        finally:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
        return report
