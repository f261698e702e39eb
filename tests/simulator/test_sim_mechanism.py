"""The cascade is the feedback loop: liquidations walk the book and cross the next bands."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.book import LiquidationBook, book_impact

DEPTH_1PCT = 20e6
SHOCK = math.log(0.972)  # -2.8 %: reaches only the top band of 20x longs by itself


def _layered_book(usd_per_entry: float) -> LiquidationBook:
    """20x longs entered every 0.5 % from 100 down to 95: liquidation bands stacked below."""
    book = LiquidationBook(price=100.0, leverage_levels=(20.0,))
    for entry in np.arange(100.0, 94.9, -0.5):
        book.open("long", usd_per_entry, float(entry), 20.0)
    return book


def test_dense_band_liquidates_more_and_moves_price_further_than_sparse() -> None:
    dense = _layered_book(40e6).shock(SHOCK, DEPTH_1PCT)
    sparse = _layered_book(1e6).shock(SHOCK, DEPTH_1PCT)

    assert dense.liquidated_long_usd > 10 * sparse.liquidated_long_usd
    assert dense.log_move < sparse.log_move - 0.01  # at least 1 % further down
    assert dense.rounds >= 2, "impact of the first band should trigger the next"
    assert dense.bands > sparse.bands
    # A sparse book barely amplifies: the move stays close to the shock.
    assert sparse.log_move == pytest.approx(SHOCK, abs=0.004)
    assert dense.liquidated_short_usd == 0 == sparse.liquidated_short_usd


def test_shock_away_from_the_bands_liquidates_nothing() -> None:
    book = _layered_book(40e6)
    out = book.shock(-SHOCK, DEPTH_1PCT)  # up: longs are safe
    assert out.liquidated_long_usd == 0
    assert out.log_move == pytest.approx(-SHOCK)
    assert book.open_interest() == pytest.approx(11 * 40e6)


def test_liquidated_notional_leaves_open_interest() -> None:
    book = _layered_book(40e6)
    before = book.open_interest()
    out = book.shock(SHOCK, DEPTH_1PCT)
    assert book.open_interest() == pytest.approx(before - out.liquidated_long_usd, rel=1e-9)


def test_short_squeeze_is_the_mirror_image() -> None:
    book = LiquidationBook(price=100.0, leverage_levels=(20.0,))
    for entry in np.arange(100.0, 105.1, 0.5):
        book.open("short", 40e6, float(entry), 20.0)
    out = book.shock(-SHOCK, DEPTH_1PCT)
    assert out.liquidated_short_usd > 0 and out.liquidated_long_usd == 0
    assert out.log_move > -SHOCK + 0.01


def test_liquidation_price_follows_leverage_and_maintenance_margin() -> None:
    book = LiquidationBook(price=100.0, leverage_levels=(10.0, 100.0))
    # 10x with 5 % maintenance: liquidated 1/10 - 5 % below entry; 100x with 0.5 %: 0.5 % below.
    assert book.open("long", 1e6, 100.0, 10.0) == pytest.approx(95.0)
    assert book.open("long", 1e6, 100.0, 100.0) == pytest.approx(99.5)
    assert book.open("short", 1e6, 100.0, 10.0) == pytest.approx(105.0)


def test_book_impact_is_concave_and_signed() -> None:
    one = book_impact(1e6, 1e6)
    assert one == pytest.approx(0.01)
    assert book_impact(4e6, 1e6) == pytest.approx(0.02)
    assert book_impact(-4e6, 1e6) == pytest.approx(-0.02)
