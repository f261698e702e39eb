"""A registered model version as the report needs it: its Predictor and walk-forward artefacts.

`flushcast report` and `flushcast monitor` read a version straight from the MLflow registry (the
service reads its copy in the BentoML store instead, `serving.loading`).
"""

from __future__ import annotations

from flushcast.forecast.predictor import Predictor
from flushcast.reporting.card import WalkForward, load_walk_forward


def load_predictor(
    ref: str = "champion", tracking_uri: str | None = None, command: str = "report"
) -> tuple[Predictor, WalkForward | None]:
    """A registered version (number, alias or `latest`) as a Predictor, with its walk-forward
    artefacts; a version that is not the champion is marked so (`Predictor.promoted`).
    Without a champion the error names `command`'s own way forward (`--version latest`)."""
    from flushcast.training.registry import CHAMPION, RegistryError, load_bundle
    from flushcast.training.tracking import tracking_uri as resolve
    from flushcast.training.versions import champion_version, no_champion, version_number

    uri = resolve(tracking_uri)
    try:
        bundle, identity = load_bundle(version_number(ref, uri), tracking_uri=uri)
    except RegistryError as exc:
        raise (no_champion(exc, command) if ref == CHAMPION else exc) from None
    promoted = identity.model_version == champion_version(uri)
    return Predictor(bundle, identity, promoted), load_walk_forward(identity.run_id, uri)
