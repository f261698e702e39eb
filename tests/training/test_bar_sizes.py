"""Datasets of one bar size, from one store or several; a model serves only its own bar size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flushcast.common.engine import InProcess
from flushcast.common.errors import DataError
from flushcast.features.demean import SOURCES, name_of
from flushcast.features.registry import missing_at, names_at
from flushcast.marketdata.resample import to_bar
from flushcast.marketdata.schema import VALUE_COLUMNS, conform
from flushcast.marketdata.store import MarketStore
from flushcast.simulator import simulate
from flushcast.training.config import TrainingConfig
from flushcast.training.dataset import load_dataset
from flushcast.training.evaluate import evaluate
from flushcast.training.labels import LabelSpec, make_labels
from flushcast.training.train import fit_bundle

FOUR = pd.Timedelta(hours=4)


def _aggregate(frame: pd.DataFrame, bar: pd.Timedelta) -> pd.DataFrame:
    parts = []
    for (symbol, venue), part in frame.groupby(["symbol", "venue"], observed=True):
        bars, _ = to_bar(part[["timestamp", *VALUE_COLUMNS]], bar=bar)
        parts.append(bars.assign(symbol=symbol, venue=venue))
    return conform(pd.concat(parts, ignore_index=True))


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("bars")
    market = simulate("default", ["BTCUSDT", "ETHUSDT", "SOLUSDT"], days=200, seed=9).frame
    four = _aggregate(market, FOUR)
    paths = {name: root / name for name in ("btc_eth_4h", "sol_4h", "btc_1h")}
    MarketStore(paths["btc_eth_4h"]).write(four[four["symbol"] != "SOLUSDT"], bar=FOUR)
    MarketStore(paths["sol_4h"]).write(four[four["symbol"] == "SOLUSDT"], bar=FOUR)
    MarketStore(paths["btc_1h"]).write(market[market["symbol"] == "BTCUSDT"])
    return {"paths": paths, "four": four, "market": market}


def test_a_horizon_must_be_whole_bars(stores):
    four = stores["four"]
    make_labels(four, LabelSpec(horizons=(4, 12, 24)), bar=FOUR)
    with pytest.raises(DataError, match="horizon of 6 h is not a whole number of 4 h bars"):
        make_labels(four, LabelSpec(horizons=(6,)), bar=FOUR)


def test_stores_pool_when_their_bars_agree(stores):
    paths = stores["paths"]
    label = LabelSpec(horizons=(12,))
    pooled = load_dataset([paths["btc_eth_4h"], paths["sol_4h"]], label=label)
    assert pooled.bar == FOUR
    assert set(pooled.series) == {"BTCUSDT@sim", "ETHUSDT@sim", "SOLUSDT@sim"}
    with pytest.raises(DataError, match="different bar sizes"):
        load_dataset([paths["btc_eth_4h"], paths["btc_1h"]], label=label)
    with pytest.raises(DataError, match="BTCUSDT@sim is in two stores"):
        load_dataset([paths["btc_eth_4h"], paths["btc_eth_4h"]], label=label)


def test_a_training_store_trains_but_is_never_tested(stores):
    paths = stores["paths"]
    label = LabelSpec(horizons=(12,))
    dataset = load_dataset(paths["sol_4h"], label=label, train_stores=[paths["btc_eth_4h"]])
    config = TrainingConfig(label=label).with_overrides(
        {"evaluation.n_boot": 0, "fit.candidates": ["logistic"], "fit.lightgbm.rounds": 20}
    )
    evaluation = evaluate(dataset, config, runner=InProcess())
    frame = evaluation.predictions[12]
    assert set(frame["symbol"].astype(str)) == {"SOLUSDT"}
    folds = evaluation.horizons[12].folds
    # Every fold learnt from all three series' past, not from SOL's alone.
    sol_rows = dataset.labelled(12)
    sol_rows = sol_rows[sol_rows["symbol"].astype(str) == "SOLUSDT"]
    first = folds.iloc[0]
    assert first["n_train"] > (sol_rows["timestamp"] < first["train_end"]).sum()


def test_a_model_records_its_bar_and_refuses_bars_of_another_size(stores):
    from flushcast.serving.endpoints import ServedPredictor as Predictor
    from flushcast.serving.errors import InputError
    from flushcast.serving.requests import PredictRequest
    from flushcast.training.registry import ModelIdentity

    paths = stores["paths"]
    label = LabelSpec(horizons=(12, 24))
    dataset = load_dataset(paths["btc_eth_4h"], label=label)
    config = TrainingConfig(label=label).with_overrides(
        {"evaluation.n_boot": 0, "fit.candidates": ["lightgbm"], "fit.lightgbm.rounds": 20}
    )
    bundle = fit_bundle(dataset, config)
    assert bundle.bar == FOUR
    # Not built at 4 h bars (the last bar is the 4 h window): not an input, never "missing".
    assert set(missing_at(FOUR)).isdisjoint(bundle.features)
    assert {"oi_change_4h", "return_4h", "liq_imbalance_last_bar"} <= set(bundle.features)
    predictor = Predictor(bundle, ModelIdentity(model_name="m", model_version="1", run_id="r"))
    four = stores["four"]
    btc = four[four["symbol"] == "BTCUSDT"].tail(bundle.max_lookback)
    bars = btc.drop(columns=["symbol", "venue"]).assign(
        timestamp=btc["timestamp"].map(lambda t: t.isoformat())
    )
    records = [{k: v for k, v in r.items() if v == v} for r in bars.to_dict("records")]
    answer = predictor.predict(
        PredictRequest.model_validate({"symbol": "BTCUSDT", "venue": "sim", "bars": records})
    )
    assert [h.horizon_hours for h in answer.horizons] == [12, 24]
    missing = [w for w in answer.warnings if "features missing" in w]
    assert not any(name in w for w in missing for name in missing_at(FOUR))
    assert all(f"of {len(bundle.features)} features missing" in w for w in missing)
    assert all(0 < h.p_flush < 1 for h in answer.horizons)
    start = pd.Timestamp(records[0]["timestamp"])
    hourly = [
        dict(r, timestamp=(start + pd.Timedelta(hours=i)).isoformat())
        for i, r in enumerate(records)
    ]
    with pytest.raises(InputError, match="trained on 4 h bars"):
        predictor.predict(
            PredictRequest.model_validate({"symbol": "BTCUSDT", "venue": "sim", "bars": hourly})
        )
    assert np.isfinite(bundle.horizons[12].base_rate)


@pytest.mark.slow
def test_stores_of_other_bar_sizes_train_a_model_judged_on_the_tested_stores_own_folds(stores):
    """Hourly BTC trains beside 4 h SOL (bar size an input); the folds and test rows are SOL's
    own, each fold learns from more rows, and `train` ships a 4 h model."""
    paths = stores["paths"]
    label = LabelSpec(horizons=(12,))
    alone = load_dataset(paths["sol_4h"], label=label)
    both = load_dataset(paths["sol_4h"], label=label, train_stores=[paths["btc_1h"]])
    assert both.bar == FOUR and both.split_bar == pd.Timedelta(hours=1)
    assert both.features == [*names_at(FOUR), "bar_hours"]  # the tested bar's features
    assert set(both.table["bar_hours"]) == {1.0, 4.0}
    assert both.series["BTCUSDT@sim"]["tested"] is False
    config = TrainingConfig(label=label).with_overrides(
        {
            "evaluation.n_boot": 0,
            "fit.candidates": ["logistic", "lightgbm"],
            "fit.lightgbm.rounds": 20,
            "combination.inputs": ["logistic", "lightgbm"],
            "evaluation.baselines": ["climatology"],
        }
    )
    from flushcast.training.horizon import horizon_data

    mine, theirs = (horizon_data(d, 12).folds(config) for d in (alone, both))
    assert [f.test_start for f in mine] == [f.test_start for f in theirs]
    assert all(len(a.test) == len(b.test) for a, b in zip(mine, theirs, strict=True))
    assert all(len(b.train) > len(a.train) for a, b in zip(mine, theirs, strict=True))
    evaluation = evaluate(both, config, runner=InProcess())
    assert set(evaluation.predictions[12]["symbol"].astype(str)) == {"SOLUSDT"}
    bundle = fit_bundle(both, config, evaluation)
    assert bundle.bar == FOUR and "bar_hours" not in bundle.features
    from flushcast.features.registry import FEATURES, max_lookback

    assert bundle.bar_input and bundle.columns[-2:] == ["bar_hours", "symbol"]
    bundle.check_features(FEATURES, max_lookback(FOUR))  # served like any bundle
    # Tested stores still share one bar size: the bundle serves one.
    with pytest.raises(DataError, match="tested stores have different bar sizes"):
        load_dataset([paths["sol_4h"], paths["btc_1h"]], label=label)


def test_a_training_store_is_labelled_at_the_horizons_whole_in_its_own_bars(stores, tmp_path):
    day = pd.Timedelta(days=1)
    four = stores["four"]
    daily = tmp_path / "btc_1d"
    MarketStore(daily).write(_aggregate(four[four["symbol"] == "BTCUSDT"], day), bar=day)
    label = LabelSpec(horizons=(4, 24))
    both = load_dataset(stores["paths"]["sol_4h"], label=label, train_stores=[daily])
    table = both.table
    is_daily = table["bar_hours"] == 24.0
    assert table.loc[is_daily, "flush_4h"].isna().all()  # 4 h is not whole days
    assert table.loc[is_daily, "flush_24h"].notna().any()
    assert table.loc[~is_daily, "flush_4h"].notna().any()
    with pytest.raises(DataError, match="no horizon of \\[4\\] h is a whole number of 1 d"):
        load_dataset(
            stores["paths"]["sol_4h"], label=LabelSpec(horizons=(4,)), train_stores=[daily]
        )


def _small_lightgbm(excluded: list[str], min_train_days: int) -> dict[str, object]:
    """A quick recipe (one small LightGBM, no bootstrap) with these families left out."""
    return {
        "features.exclude_families": excluded,
        "evaluation.n_boot": 0,
        "fit.candidates": ["lightgbm"],
        "fit.lightgbm.rounds": 20,
        "walk_forward.min_train_hours": 24 * min_train_days,
    }


def test_a_daily_model_learns_without_the_families_switched_off(stores):
    from flushcast.training.forecaster import FlushForecaster

    daily = _aggregate(stores["market"], pd.Timedelta("1D"))
    forecaster = FlushForecaster(
        horizons=[24],
        overrides=_small_lightgbm(["events", "clock"], min_train_days=60),
    ).fit(daily)
    features = forecaster.fitted.features
    assert "ls_ratio_log" in features and "breadth_oi_change_24h" in features
    # Shorter than a day, or a day's last bar again: not learnt from, so never "missing".
    assert set(missing_at(pd.Timedelta("1D"))).isdisjoint(features)
    assert {"oi_change_24h", "return_24h", "liq_24h_over_oi"} <= set(features)
    assert not [f for f in features if f.startswith("event_") or f == "day_of_week"]
    assert forecaster.fitted.bar == pd.Timedelta("1D")
    out = forecaster.predict(daily.tail(200))
    assert out["p_flush_24h"].between(0, 1).all()


@pytest.mark.slow
@pytest.mark.parametrize("bar", ["1h", "4h", "1D"])
def test_a_model_learns_and_scores_the_round_4_families_at_every_bar(stores, bar):
    """Switched on, each symbol against the others, the distance to the 30-day extremes, the
    σ ratio and each feature against its own 30-day mean (demean) are learnt from and scored
    at 1 h, 4 h and daily bars alike."""
    from flushcast.training.forecaster import FlushForecaster

    step = pd.Timedelta(bar)
    market = stores["market"] if bar == "1h" else _aggregate(stores["market"], step)
    horizon = 24 if bar == "1D" else 12
    forecaster = FlushForecaster(
        horizons=[horizon],
        overrides={
            **_small_lightgbm(["events", "breadth"], min_train_days=120),
            "walk_forward.retrain_every_hours": 24 * 40,
        },
    ).fit(market)
    features = forecaster.fitted.features
    new = {"rel_liq_surprise_24h", "rel_oi_change_24h", "dist_extreme_30d_sigma"}
    assert new | {"sigma_ratio_30d_prior_30d"} <= set(features)
    assert ("rel_liq_surprise_4h" in features) == (bar != "1D")
    assert {name_of(source) for source in SOURCES} <= set(features)
    out = forecaster.predict(market.tail(len(market) // 3))
    assert out[f"p_flush_{horizon}h"].between(0, 1).all() and len(out) > 0


@pytest.mark.slow
@pytest.mark.parametrize("bar", ["1h", "4h", "1D"])
def test_the_ranking_candidate_learns_in_blocks_of_hours_at_every_bar(stores, bar):
    """`lightgbm_rank` groups its training rows into the walk-forward's test blocks, counted
    in hours, so a block holds the same span of market at 1 h, 4 h and daily bars; the stack
    made of it scores through the notebook API at each."""
    from flushcast.models.learners import GradientBoosting
    from flushcast.training.forecaster import FlushForecaster

    step = pd.Timedelta(bar)
    market = stores["market"] if bar == "1h" else _aggregate(stores["market"], step)
    horizon = 24 if bar == "1D" else 12
    block = 24 * 40
    forecaster = FlushForecaster(
        horizons=[horizon],
        overrides={
            **_small_lightgbm(["events", "breadth"], min_train_days=120),
            "walk_forward.retrain_every_hours": block,
            "fit.candidates": ["lightgbm_rank"],
            "combination.inputs": ["lightgbm_rank"],
        },
    ).fit(market)
    (ranked,) = forecaster.fitted.horizons[horizon].learners()
    assert isinstance(ranked, GradientBoosting) and ranked.group_hours == block
    t = market["timestamp"].dt.tz_convert(None).to_numpy().astype("datetime64[us]")
    X = np.zeros((len(t), len(ranked.columns)))
    days = (t.max() - t.min()) / np.timedelta64(1, "D")
    assert ranked.queries(X, t).max() + 1 == int(days * 24 // block) + 1
    out = forecaster.predict(market.tail(len(market) // 3))
    assert out[f"p_flush_{horizon}h"].between(0, 1).all() and len(out) > 0


def test_symbols_only_in_training_stores_are_refused_in_one_line(stores):
    paths = stores["paths"]
    label = LabelSpec(horizons=(12,))
    for other in (paths["btc_eth_4h"], paths["btc_1h"]):  # one bar size, and two
        with pytest.raises(DataError, match=r"\['BTCUSDT'\] in none of the tested stores"):
            load_dataset(paths["sol_4h"], ["BTCUSDT"], label=label, train_stores=[other])
