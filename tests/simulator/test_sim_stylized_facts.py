"""The default scenario lands within the stated tolerances of the real data's stylized facts.

One function (`stylized_facts`) measures simulated and real frames. The tolerances must hold for
the real samples too (otherwise they would not describe reality) and must fail for a random walk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.simulate import simulate
from simulator.stylized_facts import (
    FUNDING_FACTS,
    TOLERANCES,
    funding_facts,
    stylized_facts,
    within_tolerance,
)

COINALYZE = "denizyts__Coinalyze-Backtester/src/csvFolder"
PAKCHU_BTC = "pakchu__rllm/data/binance_um_btcusdt_funding_marks_2020_2023.csv.gz"
SUPERVIK = "supervik__historical-funding-rates-fetcher/data"


def _real_frame(real_data: Path) -> pd.DataFrame:
    from marketdata.ingest import read_canonical

    folder = real_data / COINALYZE
    # Coinalyze's hourly exports are naive UTC+6 (see the data README).
    frames = [
        read_canonical("coinalyze", sorted(folder.glob(f"{coin}USDT_PERP.A_*.csv")), tz="+06:00")
        for coin in ("BTC", "ETH", "SOL")
    ]
    return pd.concat(frames, ignore_index=True)


def _real_funding(real_data: Path) -> list[dict[str, float]]:
    from marketdata.ingest import read_sources

    sources = read_sources("funding-csv", [real_data / PAKCHU_BTC])
    # supervik's Binance and Bybit dates are naive UTC+3 (see the data README).
    supervik = sorted((real_data / SUPERVIK).glob("*/*_b[iy]*_funding_history.csv"))
    sources += read_sources("funding-csv", supervik, tz="+03:00")
    return [funding_facts(s.data.set_index("timestamp")["funding_rate"]) for s in sources]


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return stylized_facts(simulate("default", days=365, seed=7).frame)


@pytest.mark.realdata
def test_real_data_lies_within_the_tolerances(real_data: Path) -> None:
    facts = stylized_facts(_real_frame(real_data))
    assert len(facts) == 3
    for key, row in facts.iterrows():
        measured = row.drop(list(FUNDING_FACTS))  # Coinalyze has no funding
        assert measured.notna().all(), key
        ok = within_tolerance(measured)
        assert ok.all(), f"{key}: outside {ok[~ok].index.tolist()}: {measured[~ok].to_dict()}"
    funding = _real_funding(real_data)
    assert len(funding) == 5
    for facts_one in funding:
        ok = within_tolerance(pd.Series(facts_one))
        assert ok.all(), facts_one


@pytest.mark.slow
def test_simulated_default_lies_within_the_tolerances(simulated: pd.DataFrame) -> None:
    assert set(simulated.columns) == set(TOLERANCES)
    for key, row in simulated.iterrows():
        assert row.notna().all(), key
        ok = within_tolerance(row)
        assert ok.all(), f"{key}: outside {ok[~ok].index.tolist()}: {row[~ok].to_dict()}"


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


def test_facts_are_scale_free() -> None:
    frame = _random_walk(24 * 60)
    scaled = frame.assign(
        **{c: frame[c] * 1000 for c in ("open", "high", "low", "close", "oi_usd")},
        liq_long_usd=frame["liq_long_usd"] * 1000,
        liq_short_usd=frame["liq_short_usd"] * 1000,
    )
    pd.testing.assert_frame_equal(
        stylized_facts(frame).reset_index(drop=True), stylized_facts(scaled).reset_index(drop=True)
    )
