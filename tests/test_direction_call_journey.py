"""The direction call stacked with its trivial rules, and the direction model learning from
large moves too, used the way a user would (slow tier).

`flushcast train --set combination.direction=stack` at 1 h, 4 h and daily bars registers a
version whose bundle ships, per horizon, the direction trees and the trivial rules as scorers
(`models.direction.DirectionCall`); that version answers /predict in process (the service's
ASGI app behind a test client, as in the cross-bar journey) and through the notebook API, and
both give the same P(long flush) for the same bar.
"""

from __future__ import annotations

import pytest

from flushcast.marketdata.store import MarketStore
from flushcast.models.bundle import Bundle
from flushcast.models.learners import GradientBoosting
from flushcast.training.labels import (
    LONG_FLUSH,
    SHORT_SQUEEZE,
    LabelSpec,
    direction_column,
    make_labels,
)
from flushcast.training.registry import download_bundle
from tests.test_cross_bar_journey import _run, serve_and_predict

pytestmark = pytest.mark.slow

BARS = {"1h": (110, "4,12", 720), "4h": (120, "4,12", 720), "1d": (500, "24,48", 2880)}


def _train(tmp_path, bar: str, *sets: str) -> tuple[str, dict[str, str], Bundle]:
    """A simulated store of `bar`-sized bars and version 1 trained on it by the CLI with these
    `--set` keys (besides a small recipe): the registry's URI, the environment, the bundle."""
    days, horizons, every = BARS[bar]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    _run(tmp_path, env, "simulate", "--days", str(days), "--store", "store", "--bar", bar,
         "--symbols", "BTCUSDT,ETHUSDT", "--seed", "3")  # fmt: skip
    recipe = ["--horizons", horizons, "--n-boot", "0", "--retrain-every", str(every)]
    sets = ("fit.lightgbm.rounds=30", "fit.candidates=[logistic,lightgbm]",
            "combination.inputs=[logistic,lightgbm]", "fit.direction.rounds=20", *sets)  # fmt: skip
    recipe += [word for key in sets for word in ("--set", key)]
    _run(tmp_path, env, "train", "--store", "store", "--no-evaluate", *recipe)
    _, path = download_bundle("1", tmp_path / "bundle", tracking_uri=uri)
    return uri, env, Bundle.load(path)


def _serves_as_the_notebook(tmp_path, uri: str, env: dict[str, str], bundle: Bundle) -> None:
    """/predict answers every horizon's P(long flush) as the notebook API does."""
    answer = serve_and_predict(tmp_path, "store", uri, env)
    status, predicted = answer["predict"]
    assert status == 200, predicted
    assert [h["horizon_hours"] for h in predicted["horizons"]] == sorted(bundle.horizons)
    for horizon in predicted["horizons"]:
        p = answer["notebook"][f"p_long_flush_{horizon['horizon_hours']}h"]
        assert 0 < horizon["p_long_flush"] < 1
        assert horizon["p_long_flush"] == pytest.approx(p, rel=1e-9)


@pytest.mark.parametrize("bar", list(BARS))
def test_a_stacked_direction_call_trains_serves_and_predicts_alike_at_every_bar(tmp_path, bar):
    uri, env, bundle = _train(tmp_path, bar, "combination.direction=stack")
    for h, model in bundle.horizons.items():
        # The bundle ships the trees with the rules its data can feed, and their weights.
        assert model.direction is not None and model.direction.kind == "direction_call", h
        rules = {r.name for r in model.direction.rules}
        assert rules == {"majority", "funding_sign", "return_24h_sign"}, h
        assert set(model.choice["direction"]["weights"]) == {"model", *rules}, h
    _serves_as_the_notebook(tmp_path, uri, env, bundle)


@pytest.mark.parametrize("bar", list(BARS))
def test_a_direction_model_learning_from_large_moves_trains_and_serves_at_every_bar(tmp_path, bar):
    """`--set fit.direction.move_weight=…` ships direction trees that learned from more rows
    than the one-sided flushes (their first tree's root counts its bagged rows), and /predict
    answers with them as the notebook does."""
    moves = ("fit.direction.move_weight=0.3", "fit.direction.move_threshold=0.5")
    uri, env, bundle = _train(tmp_path, bar, *moves, "fit.min_direction_rows=10")  # daily: few
    assert bundle.fit["fit.direction.move_weight"] == 0.3
    market = MarketStore(tmp_path / "store")
    spec = LabelSpec.from_params(bundle.label)
    labels = make_labels(market.read(), spec, bar=market.common_bar())
    for h, model in bundle.horizons.items():
        assert isinstance(model.direction, GradientBoosting), h
        sides = labels[direction_column(h)].astype(object)
        flushes = int(sides.isin([LONG_FLUSH, SHORT_SQUEEZE]).sum())
        root = model.direction.booster.dump_model()["tree_info"][0]["tree_structure"]
        assert root["internal_count"] > 0.75 * flushes, h  # half of every row is drawn per tree
    _serves_as_the_notebook(tmp_path, uri, env, bundle)
