"""The `flushcast` command line: one Typer app; each package contributes its own commands."""

from __future__ import annotations

import typer

from flushcast import report_cli, serve_cli
from flushcast.demo import demo
from flushcast.features import cli as features_cli
from flushcast.live import cli as live_cli
from flushcast.marketdata import cli as marketdata_cli
from flushcast.marketdata import cli_fetch as fetch_cli
from flushcast.marketdata.collect import cli as collect_cli
from flushcast.simulator import cli as simulator_cli
from flushcast.training import cli as training_cli

app = typer.Typer(
    name="flushcast",
    help="Forecast crypto liquidation cascades (leverage flushes) and explain every prediction.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("ingest")(marketdata_cli.ingest)
app.add_typer(marketdata_cli.data_app, name="data")
app.add_typer(fetch_cli.app, name="fetch")
app.add_typer(collect_cli.app, name="collect")
app.add_typer(features_cli.app, name="features")
app.command("simulate")(simulator_cli.simulate)
app.command("train")(training_cli.train)
app.command("evaluate")(training_cli.evaluate)
app.command("tune")(training_cli.tune)
app.command("promote")(training_cli.promote)
app.command("rollback")(training_cli.rollback)
app.command("report")(report_cli.report)
app.command("serve")(serve_cli.serve)
app.command("build")(serve_cli.build)
app.command("monitor")(live_cli.monitor)
app.command("demo")(demo)
