"""Which registered version to serve: the champion, a number, or the newest (`latest`).

Beside the registry, not in `serving.importer` (which needs BentoML), so `flushcast report`
and `flushcast monitor` stay light.
"""

from __future__ import annotations

from flushcast.training.registry import CHAMPION, MODEL_NAME, RegistryError, client
from flushcast.training.tracking import tracking_uri

LATEST = "latest"
"""The newest registered version, whatever the gate said of it."""


def champion_version(uri: str | None = None) -> str | None:
    """The version number holding the champion alias; None while no version has passed."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client(tracking_uri(uri)).get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except MlflowException:
        return None
    return str(champion.version)


def version_number(ref: str, uri: str | None = None) -> str:
    """`latest` as the newest version's number; any other reference (number, alias) as given."""
    if ref != LATEST:
        return ref
    versions = client(tracking_uri(uri)).search_model_versions(f"name='{MODEL_NAME}'")
    if not versions:
        raise RegistryError(f"model {MODEL_NAME!r} has no version yet: train one first")
    return str(max(int(v.version) for v in versions))


def no_champion(exc: RegistryError, command: str) -> RegistryError:
    """The registry's "no alias 'champion'" with the way forward for `command` (serve, report,
    monitor: each takes `--version latest`)."""
    if command == "monitor":  # it reads what a service logged: name the version that served
        way = (
            "Monitor the newest one anyway with `flushcast monitor --version latest` (the "
            "version `flushcast serve --version latest` answers with)"
        )
    else:
        way = (
            f"Use the newest one anyway with `flushcast {command} --version latest`: it is then "
            "marked not promoted wherever it answers"
        )
    return RegistryError(
        f"{exc}: no version has passed the promotion gate yet (`flushcast promote N` says why). "
        + way
    )
