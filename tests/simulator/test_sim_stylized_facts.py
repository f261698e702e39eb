"""The default scenario lands within the stated tolerances of the real data's stylized facts.

One function (`stylized_facts`, and `flush_facts` per bar size) measures simulated and real
frames. The tolerances must hold for the real samples too (otherwise they would not describe
reality) and must fail for a random walk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flushcast.simulator.calibration import (
    coinalyze_hourly,
    coinglass_4h,
    coinglass_daily,
    funding_histories,
)
from flushcast.simulator.simulate import simulate
from flushcast.simulator.stylized_facts import (
    FLUSH_TOLERANCES,
    FUNDING_FACTS,
    TOLERANCES,
    flush_facts,
    funding_facts,
    stylized_facts,
    within_tolerance,
)

REAL_FLUSH_SETS = {"1h": coinalyze_hourly, "4h": coinglass_4h, "1d": coinglass_daily}


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return stylized_facts(simulate("default", days=365, seed=7).frame)


def _assert_within(facts: pd.DataFrame, tolerances: dict, need: set[str] | None = None) -> None:
    for key, row in facts.iterrows():
        present = row.dropna()
        if need is not None:
            assert need <= set(present.index), (key, need - set(present.index))
        ok = within_tolerance(present, tolerances)
        assert ok.all(), f"{key}: outside {ok[~ok].index.tolist()}: {present[~ok].to_dict()}"


@pytest.mark.realdata
def test_real_data_lies_within_the_tolerances(real_data: Path) -> None:
    facts = stylized_facts(coinalyze_hourly(real_data))
    assert len(facts) == 3
    need = set(TOLERANCES) - set(FUNDING_FACTS)  # Coinalyze has no funding
    _assert_within(facts, TOLERANCES, need)
    funding = [funding_facts(rate) for rate in funding_histories(real_data)]
    assert len(funding) == 5
    _assert_within(pd.DataFrame(funding), TOLERANCES, set(FUNDING_FACTS))


@pytest.mark.realdata
@pytest.mark.parametrize("bar", list(FLUSH_TOLERANCES))
def test_real_flush_facts_lie_within_the_tolerances(real_data: Path, bar: str) -> None:
    facts = flush_facts(REAL_FLUSH_SETS[bar](real_data), bar)
    assert len(facts) == {"1h": 3, "4h": 4, "1d": 7}[bar]
    # OI falls in long flushes and rises in short squeezes (USD OI moves with the price).
    _assert_within(facts, FLUSH_TOLERANCES[bar], set(FLUSH_TOLERANCES[bar]))


@pytest.mark.slow
def test_simulated_default_lies_within_the_tolerances(simulated: pd.DataFrame) -> None:
    assert set(simulated.columns) == set(TOLERANCES)
    _assert_within(simulated, TOLERANCES, set(TOLERANCES))


@pytest.mark.slow
@pytest.mark.parametrize("bar", ["1h", "4h"])
def test_simulated_flush_facts_lie_within_the_tolerances(bar: str) -> None:
    facts = flush_facts(simulate("default", days=365, seed=7, bar=bar).frame, bar)
    _assert_within(facts, FLUSH_TOLERANCES[bar], set(FLUSH_TOLERANCES[bar]))


@pytest.mark.slow
@pytest.mark.xfail(reason="known gap: simulated days are too alike (few daily flushes), see docs")
def test_simulated_daily_liquidations_vary_as_much_as_real_days() -> None:
    facts = flush_facts(simulate("default", days=365 * 2, seed=7, bar="1d").frame, "1d")
    wanted = {k: FLUSH_TOLERANCES["1d"][k] for k in ("liq_p99_over_median", "flush_share")}
    _assert_within(facts, wanted, set(wanted))


def _random_walk(hours: int = 24 * 365, seed: int = 0) -> pd.DataFrame:
    """A market without leverage: Gaussian returns, OI drifting, liquidations as plain noise."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.006, hours)
    close = 60_000 * np.exp(np.cumsum(r))
    oi = 5e9 * np.exp(np.cumsum(rng.normal(0, 0.005, hours)))
    liq = oi * rng.gamma(2.0, 5e-5, (2, hours))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=hours, freq="1h", tz="UTC"),
            "symbol": "RWUSDT",
            "venue": "test",
            "open": close / np.exp(r),
            "high": close * 1.001,
            "low": close / np.exp(r) * 0.999,
            "close": close,
            "oi_usd": oi,
            "liq_long_usd": liq[0],
            "liq_short_usd": liq[1],
            "funding_rate": 0.0001,
        }
    )


def test_a_random_walk_without_cascades_fails_the_tolerances() -> None:
    row = stylized_facts(_random_walk()).iloc[0]
    ok = within_tolerance(row)
    failed = set(ok[~ok].index)
    # No fat tails, no liquidation spikes, no flush direction, no cascades.
    assert {"return_kurtosis", "tail_share_3sd", "liq_spike_share", "cascades_per_30d"} <= failed
    assert {"long_share_down", "long_share_up"} & failed
    flush = flush_facts(_random_walk(), "1h").iloc[0]
    ok = within_tolerance(flush, FLUSH_TOLERANCES["1h"])
    assert {"liq_p99_over_median", "flush_share"} <= set(ok[~ok].index)


def test_facts_are_scale_free() -> None:
    frame = _random_walk(24 * 60)
    scaled = frame.assign(
        **{c: frame[c] * 1000 for c in ("open", "high", "low", "close", "oi_usd")},
        liq_long_usd=frame["liq_long_usd"] * 1000,
        liq_short_usd=frame["liq_short_usd"] * 1000,
    )
    for facts in (stylized_facts, lambda f: flush_facts(f, "1h")):
        pd.testing.assert_frame_equal(
            facts(frame).reset_index(drop=True), facts(scaled).reset_index(drop=True)
        )
