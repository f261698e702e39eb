"""Reasons in words: every registry feature reads as a sentence in its own unit."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from flushcast.features.registry import FEATURES
from flushcast.reporting import sentences
from flushcast.reporting.build import percentiles


def test_z_score_reads_as_sigma_from_its_mean() -> None:
    text = sentences.sentence(FEATURES["funding_z_30d"], 3.1, 0.012, percentile=0.97)
    assert text == (
        "Funding is 3.1 σ above its 30-day mean (higher than 97 % of training bars): "
        "+1.2 points of probability."
    )
    low = sentences.sentence(FEATURES["oi_z_30d"], -1.26, -0.003, percentile=0.1)
    assert low.startswith("Open interest is 1.3 σ below its 30-day mean (lower than 90 % ")
    assert low.endswith(": -0.3 points of probability.")
    plural = sentences.reading(FEATURES["liq_z_30d"], 0.4)
    assert plural == "Liquidations are 0.4 σ above their 30-day mean"


def test_funding_reads_in_basis_points() -> None:
    text = sentences.sentence(FEATURES["funding_bp"], 1.5, 0.04)
    assert "+1.50 bp per 8 h" in text
    assert text.startswith("Funding rate now")


def test_coded_feature_names_the_code() -> None:
    feature = FEATURES["oi_quadrant_4h"]
    assert sentences.codes(feature.description) == {
        0: "longs building",
        1: "shorts building",
        2: "shorts closing",
        3: "longs closing",
    }
    text = sentences.sentence(feature, 3.0, 0.05, percentile=0.9)
    assert "3: longs closing" in text
    assert "training bars" not in text  # a code has no percentile
    assert "1 = shorts building" not in text  # the code table is not repeated


def test_missing_value_says_so_without_a_percentile() -> None:
    text = sentences.sentence(FEATURES["liq_z_30d"], math.nan, -0.02, percentile=0.5)
    assert "missing" in text
    assert "training bars" not in text


@pytest.mark.parametrize("name", list(FEATURES))
def test_every_feature_has_a_sentence(name: str) -> None:
    feature = FEATURES[name]
    value = 1.0
    text = sentences.sentence(feature, value, -0.0025, percentile=0.8)
    assert text.endswith(": -0.25 points of probability.")
    shown = sentences.format_value(feature, value)
    assert shown != "missing"
    assert shown in text or "σ" in text
    if sentences.ranked(feature):
        assert "higher than 80 % of training bars" in text


def test_a_change_too_small_to_see_says_so() -> None:
    assert sentences.shift(-0.00001) == "no visible change to the probability"
    assert sentences.shift(0.0456) == "+4.6 points of probability"


def test_tiny_effects_have_no_negative_zero() -> None:
    assert sentences.effect(-0.001) == "0.00"
    assert sentences.effect(-0.006) == "-0.01"
    assert sentences.effect(0.25) == "+0.25"


def test_percent_keeps_two_significant_digits() -> None:
    assert sentences.percent(0.0071) == "0.71 %"
    assert sentences.percent(0.071) == "7.1 %"
    assert sentences.percent(0.25) == "25 %"
    assert sentences.percent(0.9996) == "over 99 %"


def test_percentiles_are_mid_ranks_and_skip_missing() -> None:
    reference = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, math.nan], "b": [math.nan] * 5})
    row = pd.Series({"a": 3.0, "b": 1.0})
    out = percentiles(reference, row)
    assert out["a"] == pytest.approx((2 + 0.5) / 4)  # two below, one tie, NaN ignored
    assert math.isnan(out["b"])  # no reference values
    assert math.isnan(percentiles(reference, pd.Series({"a": math.nan}))["a"])
