"""`flushcast serve` and `flushcast build`: thin wrappers over `bentoml serve` and `bentoml build`.

Both first import the MLflow champion into the BentoML store (once per model version), then pin
that exact BentoML tag, so what is served or packaged is the champion even after a rollback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from flushcast.common.layout import stage
from flushcast.serving import MODEL_ENV, PROMOTED_ENV, ROOT, STORE_ENV, WORKERS_ENV

SERVICE = "flushcast.service:Flushcast"
"""Import path `bentoml serve` and `bentofile.yaml` use: the service with live operation."""

TrackingOption = Annotated[
    str | None,
    typer.Option(
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."
    ),
]


def _champion(tracking_uri: str | None, ref: str = "champion") -> str:
    """Import registry version `ref` (default the champion) into the BentoML store; its tag."""
    from flushcast.models.integrity import BundleIntegrityError
    from flushcast.serving.importer import import_champion
    from flushcast.training.registry import CHAMPION, RegistryError
    from flushcast.training.versions import no_champion, version_number

    try:
        return str(import_champion(tracking_uri, ref=version_number(ref, tracking_uri)))
    except RegistryError as exc:
        problem = no_champion(exc, "serve") if ref == CHAMPION else exc
        typer.echo(f"error: {problem}", err=True)
    except BundleIntegrityError as exc:
        typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def _promoted(tag: str, tracking_uri: str | None) -> bool:
    """Whether the imported BentoML model `tag` is the registry's champion version."""
    import bentoml

    from flushcast.training.versions import champion_version

    version = str(bentoml.models.get(tag).info.metadata.get("model_version"))
    return version == champion_version(tracking_uri)


def _check_bundle(tag: str) -> None:
    """Refuse to start on a model whose files fail their SHA-256 record: every worker would."""
    import bentoml

    from flushcast.models.bundle import MANIFEST
    from flushcast.models.integrity import BundleIntegrityError, verify

    try:
        verify(bentoml.models.get(tag).path, MANIFEST)
    except (BundleIntegrityError, bentoml.exceptions.NotFound) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 for all).")] = "127.0.0.1",
    tracking_uri: TrackingOption = None,
    model: Annotated[
        str | None,
        typer.Option(help="BentoML model tag to serve instead of importing the champion."),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            help="Registry version to serve instead of the champion: a number, an alias or "
            "`latest`. A version that is not the champion is served with a 'not promoted' "
            "warning in every answer and report."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    store: Annotated[Path, typer.Option(help="Market data store for GET /report.")] = Path(
        "demo-store"
    ),
    live: Annotated[
        Path | None,
        typer.Option(
            help="Live operation: a folder for the cached risk, prediction log, alert state "
            "(GET /risk, alerts, /reload, /monitor; see docs/operations.md)."
        ),
    ] = None,
    alerts: Annotated[Path | None, typer.Option(help="Alert rules (YAML), with --live.")] = None,
    watch_champion: Annotated[
        float | None,
        typer.Option(min=1, help="With --live: poll the registry's champion every N seconds."),
    ] = None,
    clock_url: Annotated[
        str | None,
        typer.Option(help="With --live: follow a venue's clock, VENUE=URL (replays only)."),
    ] = None,
    stale_after: Annotated[
        float, typer.Option(min=0, help="Hours after a bar's close before /risk calls it stale.")
    ] = 2.0,
    stale_limit: Annotated[
        float, typer.Option(min=0, help="Hours after which /risk refuses with 503.")
    ] = 6.0,
) -> None:
    """Serve the champion model over HTTP: /predict, /predict_batch, /explain, /model, /report."""
    if model and version:
        typer.echo("error: --model and --version: give one of them", err=True)
        raise typer.Exit(code=2)
    tag = model or _champion(tracking_uri, version or "champion")
    _check_bundle(tag)
    promoted = model is not None or _promoted(tag, tracking_uri)
    mark = "" if promoted else " (NOT PROMOTED: it has not passed the promotion gate)"
    typer.echo(f"serving {tag}{mark} on http://{host}:{port} (docs at /, spec at /docs.json)")
    env = {
        **os.environ,
        MODEL_ENV: tag,
        WORKERS_ENV: str(workers),
        STORE_ENV: str(store.resolve()),
        PROMOTED_ENV: "1" if promoted else "0",
    }
    if live is not None:
        from flushcast.live.cli import live_environment

        env.update(
            live_environment(
                live, store, alerts, tracking_uri, watch_champion, clock_url, stale_after,
                stale_limit,
            )
        )  # fmt: skip
    args = ["--port", str(port), "--host", host, "--working-dir", str(ROOT)]
    os.execve(sys.executable, [sys.executable, "-m", "bentoml", "serve", SERVICE, *args], env)


def build(tracking_uri: TrackingOption = None) -> None:
    """Package the champion into a bento (code, dependencies and model; no registry needed).

    `bentoml build` copies files by path, and the code imports itself as `flushcast.X`: the
    bento is built from a copy of the checkout laid out as the wheel installs it.
    """
    env = {**os.environ, MODEL_ENV: _champion(tracking_uri)}
    with tempfile.TemporaryDirectory(prefix="flushcast-bento-") as tmp:
        context = stage(Path(tmp) / "context", ROOT)
        for name in ("bentofile.yaml", "requirements.lock"):
            shutil.copy2(ROOT / name, context / name)
        # bentoml reads only files under its working directory
        command = [sys.executable, "-m", "bentoml", "build", "."]
        code = subprocess.call(command, env=env, cwd=context)
    raise typer.Exit(code=code)


app = typer.Typer(help="The prediction service.", no_args_is_help=True, add_completion=False)
app.command("serve")(serve)
app.command("build")(build)

if __name__ == "__main__":
    app()
