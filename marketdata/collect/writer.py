"""Collected frames into the store, through the ingest pipeline's own merge-validate-write.

`ingest` reads files first and then merges what it read with the stored rows of each series and
writes the store atomically; a collector has frames, not files, so it enters that pipeline one
step later. That merge is what makes appends safe: a bar already stored must agree with the new
one (a changed value is an error, never an overwrite), missing cells may be filled (open
interest published after the bar was written), and each column's provenance is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from marketdata import ingest
from marketdata.ingest import IngestReport
from marketdata.sources import SourceFrame
from marketdata.store import MarketStore


def write_frames(store: MarketStore, frames: Sequence[SourceFrame]) -> IngestReport:
    """Merge `frames` with the store and write the series they touch (all or none)."""
    # `_build` is `ingest`'s merge step; `ingest` itself only takes file paths.
    frame, report, provenance = ingest._build(list(frames), store)
    for entry in provenance.values():  # a source named again is not a new source
        entry["columns"] = {c: list(dict.fromkeys(names)) for c, names in entry["columns"].items()}
    store.write(frame, provenance)
    return report
