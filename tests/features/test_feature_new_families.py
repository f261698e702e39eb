"""The positioning, clock, events and breadth families: hand-checked values, missing inputs,
bar sizes and point-in-time (a value at bar t never reads a later bar or a later-closing one)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from flushcast.common.errors import DataError
from flushcast.features import build_features, build_latest, events, max_lookback
from flushcast.features.events import CAP_HOURS, PACKAGED, Calendar, event_features, read_calendar
from flushcast.features.registry import FEATURES, family_names, without_families
from tests.features.conftest import synthetic_frame

NEW = ("positioning", "clock", "events", "breadth")


def new_columns() -> list[str]:
    return [name for name, spec in FEATURES.items() if spec.family in NEW]


def at_bar(frame: pd.DataFrame, bar: str) -> pd.DataFrame:
    """The synthetic hourly frame relabelled as consecutive bars of `bar` (same values)."""
    out = frame.copy()
    start = out["timestamp"].min()
    step = out.groupby(["symbol", "venue"], observed=True).cumcount().to_numpy()
    out["timestamp"] = start + step * pd.Timedelta(bar)
    return out


def test_positioning_values_by_hand() -> None:
    frame = synthetic_frame(bars=60, seed=4)
    table = build_features(frame)
    row, raw = table.iloc[-1], frame.iloc[-1]
    log_ratio = np.log(frame["long_short_ratio"].to_numpy())
    assert row["ls_ratio_log"] == pytest.approx(log_ratio[-1])
    assert row["ls_ratio_change_24h"] == pytest.approx(log_ratio[-1] - log_ratio[-25])
    bought = frame["taker_buy_volume_usd"].iloc[-24:].sum()
    traded = frame["volume_usd"].iloc[-24:].sum()
    assert row["taker_buy_share_24h"] == pytest.approx(bought / traded)
    assert raw["long_short_ratio"] > 0
    # A vendor without positioning data: every positioning column is missing, nothing else moves.
    bare = build_features(frame.assign(long_short_ratio=np.nan, taker_buy_volume_usd=np.nan))
    positioning = [n for n, s in FEATURES.items() if s.family == "positioning"]
    assert bare[positioning].isna().all().all()
    others = [n for n in FEATURES if n not in positioning]
    pd.testing.assert_frame_equal(bare[others], table[others])


def test_taker_share_z_compares_with_its_own_month() -> None:
    frame = synthetic_frame(bars=24 * 40, seed=2)
    last = frame.index[-24:]
    frame.loc[last, "taker_buy_volume_usd"] = frame.loc[last, "volume_usd"] * 0.95
    z = build_features(frame)["taker_buy_share_z_30d"]
    assert z.iloc[-1] > 3  # a day of one-sided taker buying stands out against the month
    assert abs(z.iloc[-200]) < 3


@pytest.mark.parametrize(
    ("bar", "expected"),
    [("1h", [7, 6, 5, 4, 3, 2, 1, 8]), ("4h", [4, 8]), ("1D", [np.nan])],
)
def test_hours_to_funding_from_the_close_at_every_bar(bar: str, expected: list[float]) -> None:
    frame = at_bar(synthetic_frame(bars=48), bar)
    table = build_features(frame, bar=pd.Timedelta(bar))
    got = table["hours_to_funding"].to_numpy()[: len(expected)]
    np.testing.assert_array_equal(got, expected)
    # 2024-01-01 was a Monday; the day is the bar's opening day.
    days = table["timestamp"].dt.day_of_week.to_numpy()
    np.testing.assert_array_equal(table["day_of_week"], days)
    assert table["day_of_week"].iloc[0] == 0


def _calendar(tmp_path, text: str) -> Calendar:
    path = tmp_path / "events.yaml"
    path.write_text(text)
    return read_calendar(path)


CAL = """
covers: {from: 2024-01-01T00:00Z, until: 2024-03-31T00:00Z}
events:
  - {time: 2024-01-10T13:30Z, kind: cpi}
  - {time: 2024-01-31T19:00Z, kind: fomc}
"""


def test_event_features_by_hand(tmp_path) -> None:
    cal = _calendar(tmp_path, CAL)
    closes = pd.DatetimeIndex(
        ["2024-01-10T10:00Z", "2024-01-10T13:30Z", "2024-01-10T14:00Z", "2024-01-20T00:00Z"]
    )
    out = event_features(closes, cal)
    np.testing.assert_allclose(out["event_hours_to_next"], [3.5, 0.0, CAP_HOURS, CAP_HOURS])
    np.testing.assert_array_equal(out["event_within_4h"], [1, 1, 0, 0])
    np.testing.assert_array_equal(out["event_within_24h"], [1, 1, 0, 0])
    since = out["event_hours_since_last"]
    np.testing.assert_allclose(since, [CAP_HOURS, CAP_HOURS, 0.5, CAP_HOURS])
    # Before the calendar starts, and where the look-ahead passes its end: unknown, not "none".
    edge = pd.DatetimeIndex(["2023-12-31T00:00Z", "2024-03-30T00:00Z", "2024-04-02T00:00Z"])
    out = event_features(edge, cal)
    assert np.isnan(out["event_hours_to_next"]).all()
    np.testing.assert_array_equal(out["event_within_12h"], [np.nan, 0.0, np.nan])
    np.testing.assert_array_equal(out["event_hours_since_last"][1:], [CAP_HOURS, np.nan])


def test_an_event_moves_only_the_bars_within_a_week_before_it(tmp_path) -> None:
    cal = _calendar(tmp_path, CAL)
    closes = pd.date_range("2024-01-01T01:00Z", "2024-03-20T00:00Z", freq="1h")
    base = event_features(closes, cal)
    later = pd.Timestamp("2024-01-31T21:00Z")  # the FOMC statement two hours later
    moved = Calendar(pd.DatetimeIndex([cal.times[0], later]), cal.kinds, cal.start, cal.until)
    changed = event_features(closes, moved)
    far = np.asarray(closes < cal.times[1] - pd.Timedelta(hours=CAP_HOURS))
    for name in base:
        np.testing.assert_array_equal(base[name][far], changed[name][far], name)
    assert not np.array_equal(base["event_hours_to_next"], changed["event_hours_to_next"])


def test_the_packaged_calendar_is_what_its_header_says() -> None:
    cal = read_calendar(PACKAGED)
    assert cal.start == pd.Timestamp("2019-01-01", tz="UTC")
    assert cal.until >= pd.Timestamp("2025-06-30", tz="UTC")
    eastern = cal.times.tz_convert(ZoneInfo("America/New_York"))
    kinds = np.asarray(cal.kinds)
    assert set(kinds) == {"fomc", "cpi", "nfp", "pce"}
    clock = eastern.strftime("%H:%M")
    assert (clock[kinds == "fomc"] == "14:00").all()
    assert (clock[kinds != "fomc"] == "08:30").all()
    assert (eastern.day_of_week < 5).all()  # releases fall on working days
    per_year = pd.Series(kinds[kinds == "cpi"]).groupby(eastern.year[kinds == "cpi"]).size()
    assert (per_year.loc[2019:2024] == 12).all()
    assert cal.times.is_monotonic_increasing and cal.times.max() <= cal.until
    # The unscheduled cuts of March 2020 are left out: nobody knew them a week ahead.
    assert not ((cal.times >= "2020-03-01") & (cal.times < "2020-03-20") & (kinds == "fomc")).any()


def test_user_events_are_added_from_the_environment(tmp_path, monkeypatch) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("events:\n  - {time: '2024-02-05T15:00Z', kind: halving}\n")
    close = pd.DatetimeIndex(["2024-02-05T12:00Z"])
    without = event_features(close, events.calendar())["event_hours_to_next"][0]
    monkeypatch.setenv(events.ENV, str(mine))
    with_mine = event_features(close, events.calendar())["event_hours_to_next"][0]
    assert with_mine == 3.0 and without != 3.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("events: [{time: 'soon'}]", r"events\[0\]\.time: 'soon' is not a time"),
        ("events: [{kind: cpi}]", r"events\[0\]: each event needs a `time`"),
        ("events: [{time: '2024-01-01 12:00'}]", "has no time zone"),
        ("events: [", "not valid YAML"),
        ("nothing: here", "a list under `events:`"),
    ],
)
def test_a_bad_events_file_names_the_file_and_entry(tmp_path, text, message) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as caught:
        read_calendar(path)
    assert "bad.yaml" in str(caught.value)


def test_breadth_reads_the_other_symbols_at_the_same_bar() -> None:
    frame = synthetic_frame(("BTCUSDT", "ETHUSDT", "SOLUSDT"), bars=40, seed=5)
    bp = {"BTCUSDT": 5e-4, "ETHUSDT": 1e-4, "SOLUSDT": 4e-4}
    frame["funding_rate"] = frame["symbol"].astype(str).map(bp)
    # SOL misses one bar: nobody reads its neighbours instead.
    gap = frame["timestamp"].iloc[30]
    frame = frame[~((frame["symbol"] == "SOLUSDT") & (frame["timestamp"] == gap))]
    table = build_features(frame)
    at = table.set_index(["timestamp", "symbol"])
    t = frame["timestamp"].iloc[35]
    assert at.loc[(t, "BTCUSDT"), "breadth_hot_funding_share"] == 0.5  # SOL hot, ETH not
    assert at.loc[(t, "ETHUSDT"), "breadth_hot_funding_share"] == 1.0
    assert at.loc[(gap, "ETHUSDT"), "breadth_hot_funding_share"] == 1.0  # BTC only
    oi = at["oi_change_24h"]
    expected = (oi.loc[(t, "ETHUSDT")] + oi.loc[(t, "SOLUSDT")]) / 2
    assert at.loc[(t, "BTCUSDT"), "breadth_oi_change_24h"] == pytest.approx(expected)
    np.testing.assert_array_equal(
        table.loc[table["symbol"] == "SOLUSDT", "eth_return_24h"].to_numpy(),
        at.xs("ETHUSDT", level="symbol")["return_24h"].drop(gap).to_numpy(),
    )


def test_largest_surprise_of_the_others_leaves_the_own_symbol_out() -> None:
    frame = synthetic_frame(("BTCUSDT", "ETHUSDT", "SOLUSDT"), bars=24 * 40, seed=6)
    table = build_features(frame)
    wide = table.pivot_table(index="timestamp", columns="symbol", values="liq_surprise_24h")
    got = table.pivot_table(
        index="timestamp", columns="symbol", values="breadth_liq_surprise_max_24h"
    )
    for symbol in wide.columns:
        others = wide.drop(columns=symbol).max(axis=1, skipna=True)
        np.testing.assert_allclose(got[symbol].dropna(), others.loc[got[symbol].dropna().index])
    assert got.notna().any().all()


def test_one_symbol_has_no_breadth() -> None:
    table = build_features(synthetic_frame(("SOLUSDT",), bars=60))
    breadth = [n for n, s in FEATURES.items() if s.family == "breadth"]
    assert table[breadth].isna().all().all()


@pytest.mark.parametrize("bar", ["4h", "1D"])
def test_new_families_are_point_in_time_at_coarse_bars(bar: str) -> None:
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    full = at_bar(synthetic_frame(symbols, bars=300, seed=7), bar)
    other = at_bar(synthetic_frame(symbols, bars=300, seed=8), bar)
    cutoff = full["timestamp"].iloc[200]
    past = full[full["timestamp"] <= cutoff]
    changed = pd.concat([past, other[other["timestamp"] > cutoff]], ignore_index=True)
    step = pd.Timedelta(bar)
    on_past = build_features(past, bar=step)
    table = build_features(changed, bar=step)
    earlier = table[table["timestamp"] <= cutoff].reset_index(drop=True)
    columns = new_columns()
    pd.testing.assert_frame_equal(earlier[columns], on_past[columns])
    assert on_past[columns].notna().any().all() or bar == "1D"
    end = changed["timestamp"].max()
    window = changed[changed["timestamp"] > end - max_lookback(step) * step]
    latest = build_latest(window, bar=step)
    last = table.groupby("symbol", observed=True).tail(1).reset_index(drop=True)
    pd.testing.assert_frame_equal(latest[columns], last[columns])


def test_families_can_be_switched_off() -> None:
    assert set(NEW) <= set(family_names())
    kept = without_families(["events", "clock"])
    assert "event_within_24h" not in kept and "day_of_week" not in kept
    assert "ls_ratio_log" in kept and "hour_of_day" in kept
    # An input a dataset adds beside the registry (the bar size of pooled stores) stays.
    assert without_families(["clock"], ["bar_hours", "day_of_week"]) == ["bar_hours"]


def test_breadth_is_left_out_only_when_no_needed_feature_is_its_own() -> None:
    """The service passes its model's features: without a breadth (or relative) feature among
    them the family is skipped, and every other column is exactly the full build's."""
    frame = synthetic_frame(("BTCUSDT", "ETHUSDT", "SOLUSDT"), ("binance",), bars=300, seed=3)
    full = build_features(frame)
    own = [n for n, s in FEATURES.items() if s.family in ("breadth", "relative")]
    others = [n for n in FEATURES if n not in own]
    assert full[own].notna().any().any()  # the family does say something on this market
    lean = build_features(frame, needed=[*others[:5], "bar_hours"])  # a non-registry input too
    assert lean[own].isna().all().all()
    pd.testing.assert_frame_equal(lean.drop(columns=own), full.drop(columns=own))
    with_one = build_features(frame, needed=[others[0], own[0], own[-1]])  # one of each
    pd.testing.assert_frame_equal(with_one, full)
