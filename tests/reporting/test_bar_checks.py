"""One rule wherever a model meets bars: their size is the model's, the history is long enough,
an unknown symbol is flagged; and the paths a notebook user walks fail loudly, not silently.

The model here is an hourly one (the reporting fixtures); the 4 h market is simulated at 4 h.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import flushcast as fc
from flushcast.common.errors import DataError
from flushcast.forecast.predictor import Predictor
from flushcast.live.engine import monitor_report
from flushcast.reporting import ReportError, render_report
from flushcast.reporting.build import UNREGISTERED
from flushcast.reporting.card import WalkForward
from flushcast.training.forecaster import FlushForecaster
from tests.reporting.common import IDENTITY


@pytest.fixture(scope="module")
def market_4h() -> pd.DataFrame:
    return fc.simulate(["BTCUSDT", "ETHUSDT"], days=75, seed=4, bar="4h")


@pytest.fixture(scope="module")
def forecaster(bundle) -> FlushForecaster:
    model = FlushForecaster()
    model.bundle_ = bundle
    return model


def test_monitoring_reads_the_walk_forward_of_a_trained_version(
    predictor: Predictor, market: pd.DataFrame, walk_forward: WalkForward, tmp_path
) -> None:
    """`flushcast train` versions carry their walk-forward artefacts: live monitoring must read
    them (it crashed on them), beside the live figures, from the champion's row."""
    report = monitor_report(tmp_path, market, predictor, walk_forward)
    for check in report.horizons:
        entry = walk_forward.record.horizons[check.horizon_hours]
        assert check.walk_forward["brier"] == entry.metric("champion", "brier")
        assert check.walk_forward["ece"] == entry.metric("champion", "ece")
        assert check.walk_forward["brier"] is not None


def test_report_refuses_bars_of_another_size(predictor: Predictor, market_4h) -> None:
    with pytest.raises(ReportError, match=r"bars are 4 h apart; the model was trained on 1 h"):
        render_report(predictor, market_4h, "BTCUSDT")


def test_heatmap_is_drawn_at_4h_bars(market_4h: pd.DataFrame) -> None:
    """The heatmap read at the series' own bar size has levels in view (it was all black)."""
    end = market_4h["timestamp"].max()
    figure = fc.plot_heatmap(market_4h, "BTCUSDT", end)
    (mesh,) = figure.axes[0].collections
    assert float(mesh.get_array().max()) > 0


def test_predict_refuses_another_bar_size(forecaster: FlushForecaster, market_4h) -> None:
    with pytest.raises(ValueError, match=r"bars are 4 h apart; the model was trained on 1 h"):
        forecaster.predict(market_4h)


def test_predict_refuses_too_short_a_history(forecaster: FlushForecaster, market) -> None:
    """The service's bars_needed, with the service's words."""
    needed = forecaster.fitted.max_lookback
    short = market.groupby("symbol", observed=True).tail(5)
    with pytest.raises(ValueError, match=rf"has 5 bars; the model needs at least {needed} 1 h"):
        forecaster.predict(short)
    with pytest.raises(ValueError, match="has 5 bars"):
        forecaster.explain(short, 4)


def test_predict_scores_only_bars_with_full_history(forecaster: FlushForecaster, market) -> None:
    needed = forecaster.fitted.max_lookback
    window = market.groupby("symbol", observed=True).tail(needed + 9)
    out = forecaster.predict(window)
    assert out.groupby(level="symbol").size().to_dict() == {"BTCUSDT": 10, "ETHUSDT": 10}
    last = window.groupby("symbol", observed=True)["timestamp"].max()
    assert (
        out.xs("BTCUSDT", level="symbol").index.get_level_values("timestamp").max()
        == (last["BTCUSDT"])
    )


def test_predict_flags_a_symbol_never_trained(forecaster: FlushForecaster, market) -> None:
    renamed = market.assign(
        symbol=market["symbol"].astype(str).replace({"ETHUSDT": "DOGEUSDT"}).astype("category")
    )
    with pytest.warns(UserWarning, match="symbol DOGEUSDT was not in the training data"):
        forecaster.predict(renamed)


def test_fit_with_a_y_says_what_to_pass(market) -> None:
    features = fc.build_features(market)
    with pytest.raises(TypeError, match=r"market frame alone \(fit\(market\)\)"):
        FlushForecaster().fit(features, features["funding_z_30d"])


def test_load_market_names_what_is_missing(tmp_path, market) -> None:
    from flushcast.marketdata.store import MarketStore

    with pytest.raises(DataError, match="no market data in"):
        fc.load_market(tmp_path / "no-such-store")
    MarketStore(tmp_path / "store").write(market, {})
    with pytest.raises(DataError, match=r"\['btcusdt'\] not in store .*\['BTCUSDT', 'ETHUSDT'\]"):
        fc.load_market(tmp_path / "store", ["btcusdt"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set(fc.load_market(tmp_path / "store", ["BTCUSDT"])["symbol"]) == {"BTCUSDT"}


def test_a_version_that_is_not_the_champion_says_so_everywhere(
    bundle, market: pd.DataFrame, walk_forward: WalkForward
) -> None:
    served = Predictor(bundle, IDENTITY, promoted=False)
    table = fc.build_features(market).tail(3)
    for prediction in served.table_predictions(table, explain=False, top_k=1):
        assert prediction.warnings[0].startswith("model version 3 is not promoted")
    page = render_report(served, market, "BTCUSDT", walk_forward=walk_forward)
    assert "(not promoted)" in page and "model version 3 is not promoted" in page
    promoted = Predictor(bundle, IDENTITY)
    assert not any(
        "not promoted" in w
        for p in promoted.table_predictions(table, explain=False, top_k=1)
        for w in p.warnings
    )


def test_a_notebook_model_is_reported_without_a_made_up_identity(
    forecaster: FlushForecaster, market: pd.DataFrame
) -> None:
    """A model fitted in a notebook has no registry identity: the page says so instead of
    naming an invented version."""
    page = fc.render_report(forecaster, market, "BTCUSDT", weeks=1)
    assert page.count(UNREGISTERED) == 3  # header, model card, footer
    assert "notebook" not in page and "MLflow run" not in page
