"""Risk bands read a probability against its horizon's base rate."""

from __future__ import annotations

import pytest

from flushcast.forecast.bands import band, describe, lower_edges


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (0.0, "low"),
        (1.045, "low"),  # the usual risk, not an elevated one
        (1.49, "low"),
        (1.5, "elevated"),
        (2.99, "elevated"),
        (3.0, "high"),
        (5.99, "high"),
        (6.0, "extreme"),
        (20.0, "extreme"),
    ],
)
def test_bands_by_relative_risk(ratio: float, expected: str) -> None:
    assert band(ratio * 0.04, 0.04) == expected


def test_same_probability_different_band_per_horizon() -> None:
    assert band(0.06, base_rate=0.01) == "extreme"
    assert band(0.09, base_rate=0.05) == "elevated"


def test_lower_edges_agree_with_band() -> None:
    edges = lower_edges(0.03)
    assert list(edges) == ["low", "elevated", "high", "extreme"]
    for name, edge in edges.items():
        assert band(edge, 0.03) == name


def test_base_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="base rate"):
        band(0.1, 0.0)


def test_the_words_and_the_figure_agree_with_the_band() -> None:
    assert describe() == "low below 1.5×, elevated from 1.5×, high from 3×, extreme from 6×"
