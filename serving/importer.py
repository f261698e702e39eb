"""Copy the MLflow champion into the BentoML model store, so a bento carries its own model.

The BentoML model is the bundle folder as MLflow stored it, labelled with the registered model's
name, version and run id. Importing the same version twice reuses the first copy, so
`flushcast serve` can import on every start; a stored copy is reused only if its files still
match the registry's SHA-256 record (`models.integrity`), never on its labels alone.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import bentoml

from flushcast.forecast.identity import ModelIdentity
from flushcast.models.bundle import MANIFEST, Bundle
from flushcast.models.integrity import BundleIntegrityError, recorded, verify
from flushcast.reporting.card import download_walk_forward
from flushcast.serving import WALK_FORWARD
from flushcast.training.registry import CHAMPION, MODEL_NAME, download_bundle
from flushcast.training.tracking import tracking_uri


def import_champion(uri: str | None = None, ref: str = CHAMPION) -> bentoml.Tag:
    """Import the registry version `ref` (alias or number) unless already imported; its tag."""
    with tempfile.TemporaryDirectory(prefix="flushcast-import-") as tmp:
        identity, folder = download_bundle(ref, Path(tmp), tracking_uri=tracking_uri(uri))
        return store_bundle(
            folder,
            identity,
            lambda target: download_walk_forward(identity.run_id, target, tracking_uri(uri)),
        )


def store_bundle(
    folder: Path, identity: ModelIdentity, walk_forward: Callable[[Path], object] | None = None
) -> bentoml.Tag:
    """Put a bundle folder into the BentoML store under its identity (reusing an intact copy).

    `walk_forward(target)` may write the version's evaluation artefacts into the copy.
    """
    bundle = Bundle.load(folder)  # refuses a bundle that fails its SHA-256 record
    sums = recorded(folder)
    wanted = identity.to_dict()
    for stored in bentoml.models.list():
        same = {k: stored.info.metadata.get(k) for k in wanted} == wanted
        if stored.tag.name == MODEL_NAME and same and _intact(Path(stored.path), sums):
            return stored.tag
    metadata = {**wanted, "horizons": sorted(bundle.horizons), "features": len(bundle.features)}
    with bentoml.models.create(MODEL_NAME, labels=wanted, metadata=metadata) as model:
        shutil.copytree(folder, model.path, dirs_exist_ok=True)
        if walk_forward is not None:
            walk_forward(Path(model.path) / WALK_FORWARD)
    return model.tag


def _intact(stored: Path, sums: dict[str, str]) -> bool:
    """Whether a stored copy holds exactly the recorded files, unchanged (by SHA-256)."""
    try:
        return verify(stored, MANIFEST) == sums
    except BundleIntegrityError:
        return False
