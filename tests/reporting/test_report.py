"""The report page: self-contained, agreeing with the model, point in time, clear on bad input."""

from __future__ import annotations

import base64
import dataclasses
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.features.build import build_features
from flushcast.forecast.bands import band
from flushcast.forecast.predictor import Predictor
from flushcast.models.bundle import SYMBOL, Bundle
from flushcast.reporting import sentences
from flushcast.reporting.build import (
    CONFIDENT_DIRECTION,
    ReportError,
    render_report,
    report_context,
)
from flushcast.reporting.card import WalkForward, model_card
from flushcast.reporting.sentences import percent, when
from flushcast.training.evaluate import model_names
from flushcast.training.labels import LabelSpec
from tests.reporting.common import CONFIG, HORIZONS, IDENTITY

SYMBOL_NAME = "ETHUSDT"


class _Page(HTMLParser):
    """Image sources, every URL-valued attribute and the CSP of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.urls: list[str] = []
        self.csp = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action")]
        if tag == "meta" and values.get("http-equiv") == "Content-Security-Policy":
            self.csp = values.get("content") or ""


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _latest(market: pd.DataFrame, symbol: str, at: pd.Timestamp | None = None) -> pd.DataFrame:
    table = build_features(market)
    rows = table[table["symbol"].astype(str) == symbol]
    if at is not None:
        rows = rows[rows["timestamp"] == at]
    return rows.tail(1)


def test_page_is_self_contained(report_file: Path, walk_forward: WalkForward) -> None:
    page = _parse(report_file.read_text())
    # One waterfall per horizon, the heatmap, the timeline, one reliability plot per horizon.
    assert len(page.images) == 2 * len(HORIZONS) + 2
    assert len(walk_forward.reliability) == len(HORIZONS)
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert all(url.startswith("data:") for url in page.urls), "the page must need no other file"
    assert "default-src 'none'" in page.csp


def test_headline_agrees_with_the_model(
    predictor: Predictor, bundle: Bundle, market: pd.DataFrame
) -> None:
    context = report_context(predictor, market, SYMBOL_NAME)
    row = _latest(market, SYMBOL_NAME)
    expected = bundle.predict(row)
    assert context["as_of"] == when(row["timestamp"].iloc[0])
    assert [h["horizon"] for h in context["headline"]] == sorted(bundle.horizons)
    for entry in context["headline"]:
        h = entry["horizon"]
        p = float(expected[f"p_flush_{h}h"].iloc[0])
        assert entry["p_flush"] == percent(p)
        assert entry["band"] == band(p, bundle.horizons[h].base_rate)
        if bundle.horizons[h].direction is not None:
            p_long = float(expected[f"p_long_flush_{h}h"].iloc[0])
            side = "longs flushed" if p_long >= 0.5 else "shorts squeezed"
            if max(p_long, 1 - p_long) < CONFIDENT_DIRECTION:
                side = "no clear side"
            assert entry["direction"].startswith(side)


def test_reasons_are_the_largest_contributions(
    predictor: Predictor, bundle: Bundle, market: pd.DataFrame
) -> None:
    context = report_context(predictor, market, SYMBOL_NAME, top_k=4)
    row = _latest(market, SYMBOL_NAME)
    for why in context["why"]:
        shap = bundle.contributions(row, why["horizon"]).iloc[0].drop("base_value")
        top = shap.abs().sort_values(ascending=False, kind="stable").head(4)
        assert [name for name, _ in why["steps"]] == list(top.index)
        assert [value for _, value in why["steps"]] == pytest.approx(shap[top.index].tolist())
        assert len(why["reasons"]) == 4
        assert why["others"] == len(bundle.columns) - 4
        calibrator = bundle.horizons[why["horizon"]].calibrator
        log_odds = bundle.contributions(row, why["horizon"]).iloc[0].sum()
        for (name, value), reason in zip(why["steps"], why["reasons"], strict=True):
            # in probability points: the probability minus what it would be without the reason
            now, without = calibrator.predict(np.array([log_odds, log_odds - value]))
            assert reason.endswith(f": {sentences.shift(now - without)}.")
            assert (now - without) * value >= 0  # a push up raises the probability
            if name == SYMBOL:
                assert SYMBOL_NAME in reason


def test_percentiles_are_against_the_symbols_training_hours(
    predictor: Predictor, bundle: Bundle, market: pd.DataFrame
) -> None:
    context = report_context(predictor, market, SYMBOL_NAME)
    table = build_features(market)
    reference = table[table["symbol"].astype(str) == SYMBOL_NAME]
    now = reference.iloc[-1]
    rows = {row["name"]: row for row in context["features"]}
    assert list(rows) == bundle.features
    checked = 0
    for name in ("funding_z_30d", "oi_change_24h", "rv_24h_pct", "heat_long_5pct"):
        known = reference[name].dropna()
        if np.isnan(now[name]) or known.empty:
            continue
        share = (known < now[name]).mean() + 0.5 * (known == now[name]).mean()
        assert rows[name]["percentile"] == f"{100 * share:.0f}"
        checked += 1
    assert checked >= 3
    assert f"among {len(reference):,} training bars of {SYMBOL_NAME}" in context["reference"]
    assert rows["hour_of_day"]["percentile"] == "–"


def test_an_earlier_bar_is_reported_without_later_data(
    predictor: Predictor, market: pd.DataFrame
) -> None:
    stamps = market.loc[market["symbol"].astype(str) == SYMBOL_NAME, "timestamp"]
    at = stamps.iloc[-300]
    full = report_context(predictor, market, SYMBOL_NAME, at=at, weeks=1)
    cut = report_context(predictor, market[market["timestamp"] <= at], SYMBOL_NAME, at=at, weeks=1)
    assert full["as_of"] == cut["as_of"] == when(at)
    assert full["headline"] == cut["headline"]
    assert [w["steps"] for w in full["why"]] == [w["steps"] for w in cut["why"]]
    close = market.loc[(market["symbol"] == SYMBOL_NAME) & (market["timestamp"] == at), "close"]
    assert full["price"] == pytest.approx(float(close.iloc[0]))


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"symbol": "DOGEUSDT"}, "symbol", "not in the data"),
        ({"venue": "binance"}, "venue", "is not on binance"),
        ({"at": "2019-01-01 00:00"}, "at", "no bar at 2019-01-01 00:00 UTC"),
        ({"at": "2024-02-01 10:30"}, "at", "no bar at"),
        ({"at": "yesterday-ish"}, "at", "not a time"),
        ({"weeks": 0}, "weeks", "at least 1"),
        ({"top_k": 0}, "top_k", "at least 1"),
    ],
)
def test_bad_requests_name_the_field(
    predictor: Predictor, market: pd.DataFrame, kwargs: dict, field: str, words: str
) -> None:
    arguments = {"symbol": SYMBOL_NAME, **kwargs}
    symbol = arguments.pop("symbol")
    with pytest.raises(ReportError, match=words) as caught:
        report_context(predictor, market, symbol, **arguments)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_a_symbol_on_two_venues_needs_the_venue(predictor: Predictor, market: pd.DataFrame) -> None:
    copy = market[market["symbol"] == SYMBOL_NAME].astype({"venue": "str"})
    copy["venue"] = "other"
    both = pd.concat([market.astype({"venue": "str"}), copy], ignore_index=True)
    with pytest.raises(ReportError, match="trades on") as caught:
        report_context(predictor, both, SYMBOL_NAME)
    assert caught.value.field == "venue"


def test_without_artefacts_the_card_uses_the_bundle_summary(
    predictor: Predictor, market: pd.DataFrame
) -> None:
    html = render_report(predictor, market, SYMBOL_NAME, weeks=1)
    page = _parse(html)
    assert len(page.images) == len(HORIZONS) + 2  # no reliability plots
    assert "Only the summary kept with the model is available" in html


def test_card_shows_every_baseline_and_the_label(bundle: Bundle, walk_forward: WalkForward) -> None:
    card = model_card(bundle, IDENTITY.to_dict(), walk_forward)
    assert [t["horizon"] for t in card["tables"]] == list(HORIZONS)
    for table in card["tables"]:
        assert [row["model"] for row in table["rows"]] == model_names(CONFIG)
        entry = walk_forward.record.horizons[table["horizon"]]
        champion = next(r for r in table["rows"] if r["model"] == "champion")
        assert champion["cells"][0] == f"{entry.metric('champion', 'pr_auc'):.3f}"
        assert table["best_baseline"] == entry.best_baseline
        # What the champion is made of, and direction beside its trivial rules.
        first = next(n for n, share in entry.champion_shares.items() if share)
        assert table["made_of"].startswith(f"{first} {entry.champion_shares[first]:.2f}")
        assert "majority" in table["direction_rules"]
        parts = table["direction_rules"].split(", ")
        assert not any(p.startswith(("call ", "model ")) for p in parts)  # the rules only
        # What the direction call is made of: by default the direction model alone.
        assert table["direction_made_of"] == "model 1.00"
    assert sorted(card["reliability"]) == list(HORIZONS)
    spec = LabelSpec.from_params(bundle.label)
    assert f"{spec.m:g} × (H / 4 h)^-{spec.m_decay:g}" in card["label"]
    assert "share of open interest" in card["label"] and spec.name in card["label"]
    assert f"over the past {spec.median_window_hours / 24:g} days" in card["label"]
    assert not card["simulated"]
    sources = {"sources": {"source": "flushcast simulator", "seed": 1}}
    simulated = dataclasses.replace(bundle, training={"series": {"BTCUSDT@sim": sources}})
    assert model_card(simulated, IDENTITY.to_dict(), None)["simulated"]


def test_card_says_when_simulated_history_only_trained(bundle: Bundle) -> None:
    simulator = {"sources": {"source": "flushcast simulator (augment)"}, "tested": False}
    vendor = {"sources": {"source": "coinalyze"}, "tested": True}
    added = {"days": 365, "symbols": ["BTCUSDT", "ETHUSDT"], "seed": 7}
    series = {"BTCUSDT@binance": vendor, "BTCUSDT@sim": simulator}
    augmented = dataclasses.replace(bundle, training={"series": series, "augmented": added})
    card = model_card(augmented, IDENTITY.to_dict(), None)
    assert not card["simulated"]  # tested on the vendor's data: not a demonstration
    assert "365 days of simulated history (BTCUSDT, ETHUSDT, seed 7)" in card["augmented"]
    assert model_card(bundle, IDENTITY.to_dict(), None)["augmented"] is None


def test_walk_forward_folder_must_hold_the_document(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"evaluation\.json missing"):
        WalkForward.read(tmp_path)


def test_no_percentiles_outside_the_training_period(bundle: Bundle, market: pd.DataFrame) -> None:
    span = {"data_start": "2020-01-01T00:00:00+00:00", "data_end": "2020-03-01T00:00:00+00:00"}
    elsewhere = Predictor(dataclasses.replace(bundle, training=span), IDENTITY)
    context = report_context(elsewhere, market, SYMBOL_NAME, weeks=1)
    assert context["reference"].startswith("Percentile: none, the data has no ETHUSDT bars")
    assert {row["percentile"] for row in context["features"]} == {"–"}
