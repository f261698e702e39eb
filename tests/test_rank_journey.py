"""The ranking candidate the way a user turns it on (slow tier).

`flushcast train --set fit.candidates=[…,lightgbm_rank]` on a 4 h store, with the two-part
champion (`combination.level_inputs`), registers a version whose stack holds trees trained for
the order within time blocks; that version answers /predict and
/explain in process (the service's ASGI app, as `bentoml serve` runs it) with exact reasons,
writes a report, and predicts through the notebook API, all agreeing on the same bar
(`tests/test_cross_bar_journey.py`'s script, on one store of one bar size).
"""

from __future__ import annotations

import numpy as np
import pytest

from flushcast.models.learners import GradientBoosting
from tests.test_cross_bar_journey import _run, serve_and_predict

pytestmark = pytest.mark.slow


def test_a_model_with_the_ranking_candidate_trains_serves_explains_and_reports(tmp_path):
    from flushcast.models.bundle import Bundle
    from flushcast.training.registry import download_bundle

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    _run(tmp_path, env, "simulate", "--days", "150", "--bar", "4h", "--store", "four",
         "--symbols", "BTCUSDT,ETHUSDT", "--seed", "3")  # fmt: skip
    recipe = ["--horizons", "4,12", "--n-boot", "0", "--retrain-every", "720"]
    recipe += ["--set", "fit.lightgbm.rounds=30"]
    recipe += ["--set", "fit.candidates=[logistic,lightgbm_rank]"]
    recipe += ["--set", "combination.inputs=[logistic,lightgbm_rank]"]
    # The two-part champion: the stack with the ranking trees for the order, the logistic
    # (which carries which weeks are busy) for the level.
    recipe += ["--set", "combination.level_inputs=[logistic]"]
    trained = _run(tmp_path, env, "train", "--store", "four", *recipe)
    assert "(two_part)" in trained.stdout  # the printed table names the rule

    _, folder = download_bundle("1", tmp_path / "mine", tracking_uri=uri)
    bundle = Bundle.load(folder)
    for model in bundle.horizons.values():
        assert model.choice["shares"].keys() == {"logistic", "lightgbm_rank"}
        assert model.choice["method"] == "two_part" and "level" in model.choice["reason"]
        assert model.learner.names == ["logistic", "lightgbm_rank"]
        assert isinstance(model.learners()[1], GradientBoosting)

    answer = serve_and_predict(tmp_path, "four", uri, env)
    (status, predicted), (explain_status, explained) = answer["predict"], answer["explain"]
    assert status == explain_status == 200, (predicted, explained)
    served = {h["horizon_hours"]: h["p_flush"] for h in predicted["horizons"]}
    notebook = {h: answer["notebook"][f"p_flush_{h}h"] for h in served}
    assert served == pytest.approx(notebook, rel=1e-9) and len(served) == 2
    assert all(h["explanation"]["top"] for h in predicted["horizons"])
    for horizon in explained["horizons"]:
        # The reasons add up to the stacked score, which is what the calibrator maps.
        total = sum(c["contribution"] for c in horizon["contributions"])
        assert total + horizon["base_value"] == pytest.approx(horizon["log_odds"], abs=1e-6)
        model = bundle.horizons[horizon["horizon_hours"]]
        p = float(model.calibrator.predict(np.array([horizon["log_odds"]]))[0])
        assert horizon["p_flush"] == pytest.approx(p, rel=1e-9)

    report = tmp_path / "report.html"
    _run(tmp_path, env, "report", "--symbol", "BTCUSDT", "--store", "four", "--version", "1",
         "--out", str(report))  # fmt: skip
    text = report.read_text()
    assert "BTCUSDT" in text and "(two_part)" in text  # the report names the rule too
