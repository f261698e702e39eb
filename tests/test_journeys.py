"""The path a user walks, at 1 h, 4 h and daily bars, with models made by the CLI (slow tier).

Per bar size, on a small simulated store (`flushcast simulate --bar`): evaluate, train (version
1), promote (or, when the gate refuses, serve it by name: every answer then says it is not
promoted), serve with --live on a real `flushcast serve` (one worker), a new bar arrives, /risk,
/monitor, an alert reaches a webhook, a second version trained and promoted, /reload to it (its
warm-up is at the model's own bar), the report (heatmap drawn, no hourly words on coarser bars),
and the notebook API on the same store giving the same probability /risk served.

One trained store per bar size is shared by the module (the costly part is training). The
walk-forward is cut short (`--retrain-every`, few rounds, two learners, no bootstrap; the
`evaluate` step scores one horizon): these journeys test that every step works and agrees, not
the model's skill. Steps that only read run beside the ones that wait: the refused `serve` while
the real one starts, the second training while the live steps run, the report and the notebook
while the service reloads.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.features.registry import missing_at
from flushcast.marketdata.store import MarketStore
from flushcast.reporting.browser import check_page, executable
from flushcast.simulator.simulate import BARS
from flushcast.training.labels import bar_text
from tests.serving.receiver import receiver
from tests.serving.sandbox import running_server
from tests.serving.test_live_server import until

pytestmark = pytest.mark.slow
FLUSHCAST = str(Path(sys.executable).with_name("flushcast"))
YEARS = str(24 * 365 * 10)  # the simulated market is of 2024: never stale by the wall clock


@dataclass(frozen=True)
class Journey:
    bar: str
    days: int
    horizons: str
    retrain_every: int


JOURNEYS = {
    "1h": Journey("1h", 110, "4,12", 720),
    "4h": Journey("4h", 120, "4,12", 720),
    "1d": Journey("1d", 500, "24,48", 2880),  # 500 days: ten 48 h flushes to learn from
}


@dataclass(frozen=True)
class Trained:
    journey: Journey
    folder: Path
    store: Path
    promoted: bool
    evaluation: dict
    started: list[subprocess.Popen] = field(default_factory=list)
    """Commands started for the journey (stopped with it if a step fails first)."""

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.folder / 'mlflow.db'}"

    def env(self) -> dict[str, str]:
        return {
            "BENTOML_HOME": str(self.folder / "bentoml"),
            "MLFLOW_TRACKING_URI": self.uri,
            "OMP_NUM_THREADS": "1",
        }

    def start(self, *args: str, program: tuple[str, ...] = (FLUSHCAST,)) -> subprocess.Popen:
        """`flushcast ARGS` (or `program ARGS`) started in the journey's folder, with its
        registry and BentoML home; `finish` waits for it."""
        process = subprocess.Popen(
            [*program, *args],
            cwd=self.folder,
            env={**os.environ, **self.env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(process)
        return process

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        """`flushcast ARGS` run to its end (`ok`: it must succeed)."""
        return finish(self.start(*args), ok)


def finish(process: subprocess.Popen, ok: bool = True) -> subprocess.CompletedProcess:
    """Wait for a started command; with `ok`, fail the test on its error with its stderr."""
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if ok:
        assert done.returncode == 0, f"{' '.join(map(str, process.args))}:\n{stderr[-3000:]}"
    return done


def _walk_forward(journey: Journey, horizons: str | None = None) -> list[str]:
    return [
        *("--horizons", horizons or journey.horizons, "--n-boot", "0"),
        *("--retrain-every", str(journey.retrain_every), "--set", "fit.lightgbm.rounds=30"),
        *("--set", "fit.candidates=[logistic,lightgbm]"),
        *("--set", "combination.inputs=[logistic,lightgbm]", "--set", "fit.direction.rounds=20"),
    ]


@pytest.fixture(scope="module", params=list(JOURNEYS))
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trained]:
    """simulate → evaluate → train → promote, each by the CLI, for one bar size."""
    journey = JOURNEYS[request.param]
    folder = tmp_path_factory.mktemp(f"journey-{journey.bar}")
    box = Trained(journey, folder, folder / "store", False, {})
    symbols = "BTCUSDT,ETHUSDT"
    box.run("simulate", "--symbols", symbols, "--days", str(journey.days), "--seed", "3",
            "--store", "store", "--bar", journey.bar)  # fmt: skip
    assert MarketStore(box.store).common_bar() == BARS[journey.bar]
    first = _walk_forward(journey, journey.horizons.split(",")[0])
    if journey.bar == "1h":  # the JSON is optional: the run keeps it
        shown = box.run("evaluate", "--store", "store", *first).stdout
        assert "evaluation JSON: in the run's artefacts" in shown
        evaluation = {}
    else:
        box.run("evaluate", "--store", "store", *first, "--json", "eval.json")
        evaluation = json.loads((folder / "eval.json").read_text())
        assert evaluation["meta"]["bar"] == bar_text(BARS[journey.bar])
    box.run("train", "--store", "store", *_walk_forward(journey))
    decision = box.run("promote", "1", ok=False)
    assert decision.returncode in (0, 1, 2), decision.stderr
    done = Trained(journey, folder, box.store, decision.returncode == 0, evaluation)
    yield done
    for process in done.started:
        if process.poll() is None:
            process.kill()
            process.wait()


def call(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, payload, {"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def warm_pixels(png: bytes) -> int:
    """Pixels of the inferno colour map's warm half (orange to yellow): a drawn heatmap has
    them; an all-black (blank) one has none."""
    from matplotlib import image

    rgb = image.imread(io.BytesIO(png), format="png")[..., :3]
    return int(np.sum((rgb[..., 0] > 0.8) & (rgb[..., 1] > 0.3) & (rgb[..., 2] < 0.4)))


def heatmap_png(page: str) -> bytes:
    section = page[page.index("Where the liquidations sit") :]
    (encoded,) = re.findall(r'src="data:image/png;base64,([^"]+)"', section)[:1]
    return base64.b64decode(encoded)


HOURLY_WORDS = ("training hours", "in one hour", "hourly bars", "of hours)")


def test_the_whole_journey(trained: Trained, tmp_path: Path) -> None:
    journey = trained.journey
    bar = BARS[journey.bar]
    market = MarketStore(trained.store).read()
    last = market["timestamp"].max()
    live_store = tmp_path / "live-store"
    MarketStore(live_store).write(market[market["timestamp"] < last], {}, bar=bar)

    with receiver(fail=0) as hook:
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            f"webhook: {{url: '{hook.url}', backoff_s: 0.1}}\n"
            "rules:\n  - {symbol: BTCUSDT, horizon: "
            f"{journey.horizons.split(',')[0]}, p_at_least: 0.000001, cooldown: 1h}}\n"
        )
        serve = [FLUSHCAST, "serve", "--store", str(live_store), "--live", str(tmp_path / "live")]
        serve += ["--alerts", str(rules), "--workers", "1", "--stale-after", YEARS]
        serve += ["--stale-limit", YEARS, "--tracking-uri", trained.uri]
        refusal = None
        if not trained.promoted:
            refusal = trained.start("serve", "--tracking-uri", trained.uri)
            serve += ["--version", "latest"]
        env = {**trained.env(), "FLUSHCAST_WEBHOOK_SECRET": "journey"}
        with running_server(serve, env, tmp_path / "serve.log") as (port, _):
            if refusal is not None:  # the champion alone: refused, with the way forward named
                refused = finish(refusal, ok=False)
                assert refused.returncode == 2 and "--version latest" in refused.stderr
            status, first = until(lambda: _risk(port), 60, "the first /risk")
            # the second version trains while the live steps run (the service resolved its
            # version at start, so a new registration changes nothing it answers)
            second = trained.start("train", "--store", "store", "--no-evaluate",
                                   *_walk_forward(journey))  # fmt: skip
            assert pd.Timestamp(first["as_of"]) == last - bar
            assert first["model"]["promoted"] is trained.promoted
            marked = any("is not promoted" in w for w in first["warnings"])
            assert marked is not trained.promoted

            # a new bar arrives
            MarketStore(live_store).write(market, {}, bar=bar)
            body = until(
                lambda: (r := _risk(port)) and pd.Timestamp(r[1]["as_of"]) == last and r[1],
                60,
                "/risk to describe the new bar",
            )
            assert body["staleness"]["state"] == "fresh"
            assert pd.Timestamp(body["bar_close"]) == last + bar
            status, monitored = call(port, "GET", "/monitor")
            assert status == 200, monitored
            for check in monitored["horizons"]:
                assert check["predictions"] >= 1
                assert check["walk_forward"]["brier"] is not None  # the run's own evaluation
            known = [d for d in monitored["drift"] if d["missing_training"] < 0.5]
            assert len(known) > len(monitored["drift"]) / 2  # features built at the model's bar
            until(lambda: hook.received, 30, "an alert at the webhook")
            alert = json.loads(hook.received[0][1])
            assert alert["symbol"] == "BTCUSDT"

            _docs_page(f"http://127.0.0.1:{port}", journey)

            # the second version, promoted (forced: the gate's verdict is not what is tested),
            # and reloaded: its warm-up runs at the model's own bar
            finish(second)
            trained.run("promote", "2", "--force")
            # the report and the notebook read the new champion while the service reloads
            report = tmp_path / "report.html"
            reporting = trained.start("report", "--symbol", "BTCUSDT", "--store", "store",
                                      "--out", str(report))  # fmt: skip
            notebook = trained.start(str(trained.store), trained.uri, str(tmp_path / "nb"),
                                     program=(sys.executable, "-c", NOTEBOOK))  # fmt: skip
            status, reloaded = call(port, "POST", "/reload")
            assert status == 200, reloaded
            assert reloaded["changed"] and reloaded["current"]["model_version"] == "2"
            assert reloaded["current"]["promoted"] is True
            risk = until(
                lambda: (r := _risk(port)) and r[1]["model"]["model_version"] == "2" and r[1],
                60,
                "/risk from version 2",
            )
            assert not any("is not promoted" in w for w in risk["warnings"])
            served_p = risk["horizons"][0]["p_flush"]
            # Features the bar cannot hold (a 4 h window on daily bars) are not the model's
            # inputs, so no answer counts them as missing data.
            status, info = call(port, "GET", "/model")
            inputs = {feature["name"] for feature in info["features"]}
            absent = set(missing_at(bar))
            assert status == 200 and inputs and inputs.isdisjoint(absent)
            for warning in risk["warnings"]:
                if "features missing: " in warning:
                    named = set(warning.split("features missing: ")[1].split(", "))
                    assert named <= inputs and f" of {len(inputs)} features" in warning

    finish(reporting)
    page = report.read_text()
    assert warm_pixels(heatmap_png(page)) > 200, "the heatmap is blank"
    if journey.bar != "1h":
        for words in HOURLY_WORDS:
            assert words not in page, f"{words!r} on a {journey.bar} report"
    if executable() is not None:
        check = check_page(report)
        assert check.errors == [] and check.broken_images == []
        _keep(check.screenshot, f"report-{journey.bar}.png")

    answer = json.loads(finish(notebook).stdout.strip().splitlines()[-1])
    assert answer["p_flush"] == pytest.approx(served_p, rel=1e-9)
    assert answer["heat"] > 0


SHOTS = os.environ.get("FLUSHCAST_SHOTS")
"""A folder to keep the journeys' screenshots in (to look at them); unset: not kept."""


def _keep(png: bytes, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        (Path(SHOTS) / name).write_bytes(png)


def _docs_page(url: str, journey: Journey) -> None:
    """The docs page draws the API from the service alone: no request leaves loopback."""
    if executable() is None:
        return  # tests/serving/test_server.py fails in CI without chromium; here it is a bonus
    check = check_page(f"{url}/", ready="document.querySelectorAll('.opblock').length > 5")
    assert check.errors == []
    assert all(r.startswith(f"{url}/") for r in check.fetched), check.requests
    _keep(check.screenshot, f"docs-{journey.bar}.png")


def _risk(port: int) -> tuple[int, dict] | None:
    status, body = call(port, "GET", "/risk/BTCUSDT")
    return (status, body) if status == 200 else None


NOTEBOOK = """
import json, sys
import flushcast as fc
from flushcast.training.registry import download_bundle

store, uri, folder = sys.argv[1:]
market = fc.load_market(store)
_, bundle = download_bundle("champion", __import__("pathlib").Path(folder), tracking_uri=uri)
model = fc.FlushForecaster.load(bundle)
horizon = min(model.fitted.horizons)
p = model.predict(market).xs("BTCUSDT", level="symbol").iloc[-1][f"p_flush_{horizon}h"]
figure = fc.plot_heatmap(market, "BTCUSDT", market["timestamp"].max())
heat = float(figure.axes[0].collections[0].get_array().max())
print(json.dumps({"p_flush": float(p), "heat": heat}))
"""
