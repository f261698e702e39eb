"""The mechanism: liquidations walk the book and cross the next bands (the cascade), and the
trigger hazard and fragility depend on the state the market is in."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flushcast.simulator import engine
from flushcast.simulator.book import LiquidationBook, book_impact
from flushcast.simulator.config import ScenarioConfig
from flushcast.simulator.simulate import simulate

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


# The trigger hazard and fragility: cascade timing depends on the state the market is in.


def _hazard(book: LiquidationBook, depth: float, funding: float = 0.0001, quiet: float = 0.0):
    """The engine's hazard for a hand-built book (default scenario parameters)."""
    params = engine.param_vector(ScenarioConfig())
    consts = np.zeros(engine.N_CONSTS)
    consts[[engine.K_Y0, engine.K_OI_REF, engine.K_IDIO]] = book.y, 1e9, 1.0
    sv, _ = engine.initial_state(params, consts)
    sv[engine.S_FUNDING] = funding
    sv[engine.S_QUIET] = quiet
    p, _, p_down, *_ = engine.hazard(params, book.hist, book.st, book.ptr, sv, depth)
    return p, p_down


def _book(longs: float, shorts: float, leverage: float = 10.0) -> LiquidationBook:
    book = LiquidationBook(price=100.0, leverage_levels=(leverage,))
    book.open("long", longs, 100.0, leverage)
    book.open("short", shorts, 100.0, leverage)
    return book


def test_hazard_rises_with_leverage_crowding_hot_funding_and_quiet() -> None:
    depth = 20e6
    base, down = _hazard(_book(15e6, 15e6), depth)
    assert down == pytest.approx(0.5)
    assert _hazard(_book(30e6, 30e6), depth)[0] > 1.5 * base  # more leveraged OI per depth
    assert _hazard(_book(15e6, 15e6), depth / 2)[0] > 1.5 * base  # or a thinner book
    crowded, crowded_down = _hazard(_book(24e6, 6e6), depth)  # same OI, 80 % long
    assert crowded > 1.5 * base
    assert crowded_down > 0.8, "shocks lean against the crowded side"
    assert _hazard(_book(15e6, 15e6), depth, funding=0.001)[0] > 1.5 * base
    assert _hazard(_book(15e6, 15e6), depth, quiet=24 * 5)[0] > 1.5 * base


def test_dense_bands_near_price_raise_the_hazard_and_draw_shocks_toward_them() -> None:
    def book(extra_leverage: float) -> LiquidationBook:
        b = LiquidationBook(price=100.0, leverage_levels=(10.0, 100.0))
        b.open("long", 15e6, 100.0, 10.0)
        b.open("short", 15e6, 100.0, 10.0)
        b.open("long", 5e6, 100.0, extra_leverage)  # at 100x: liquidated 0.5 % below
        return b

    far, far_down = _hazard(book(10.0), 20e6)
    near, near_down = _hazard(book(100.0), 20e6)  # same OI and crowding, bands nearer
    assert near > 1.5 * far
    assert near_down > far_down + 0.1


def test_more_leverage_more_cascades_same_seed() -> None:
    runs = [
        simulate(ScenarioConfig(leveraged_share=share), ["BTCUSDT"], days=90, seed=5)
        for share in (0.03, 0.05, 0.08)
    ]
    cascades = [len(r.cascades) for r in runs]
    hazard = [r.truth["p_shock"].mean() for r in runs]
    assert cascades[0] < cascades[1] < cascades[2], cascades
    assert hazard[0] < hazard[1] < hazard[2], hazard


def test_the_same_shock_is_amplified_very_differently_on_different_days() -> None:
    """A -2 % shock applied to copies of the market at many hours: what it liquidates spans
    orders of magnitude and follows the true notional within 2 % (the truth file)."""
    outcomes = []

    def shock(t: int, market) -> None:
        out = market.shock_outcome("BTCUSDT", math.log(0.98))
        outcomes.append((t, out.liquidated_long_usd, out.log_move / math.log(0.98)))

    result = simulate(
        "default", ["BTCUSDT"], days=60, seed=11, pause_at=range(240, 1440, 7), on_pause=shock
    )
    t, liquidated, amplification = map(np.array, zip(*outcomes, strict=True))
    assert np.quantile(liquidated, 0.9) > 20 * np.quantile(liquidated, 0.1)
    assert np.quantile(amplification, 0.9) - np.quantile(amplification, 0.1) > 0.08
    assert (amplification >= 1.0).all()
    truth = result.truth["liq_long_2pct_usd"].to_numpy()[t]
    rho = np.corrcoef(np.argsort(np.argsort(liquidated)), np.argsort(np.argsort(truth)))[0, 1]
    assert rho > 0.9
