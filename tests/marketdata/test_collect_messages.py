"""The venues' liquidation messages, parsed: side conventions, notional, bad messages; and the
book that turns them into per-bar totals with coverage."""

from __future__ import annotations

import json

import pytest

from flushcast.marketdata.collect.binance import BinanceUSDM
from flushcast.marketdata.collect.book import HOUR_MS, LiquidationBook
from flushcast.marketdata.collect.bybit import Bybit
from flushcast.marketdata.collect.events import Liquidation, MessageError

T = 1_709_600_000_000  # 2024-03-05 00:53:20 UTC


def binance_message(side: str, z: str = "0.014", ap: str = "9910", t: int = T) -> str:
    order = {"s": "BTCUSDT", "S": side, "q": z, "p": "9900", "ap": ap, "X": "FILLED", "z": z}
    return json.dumps(
        {"stream": "btcusdt@forceOrder", "data": {"e": "forceOrder", "o": {**order, "T": t}}}
    )


def bybit_message(*items: dict) -> str:
    return json.dumps(
        {"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": T, "data": list(items)}
    )


def test_binance_sell_order_is_a_liquidated_long_worth_filled_times_average_price() -> None:
    (sell,) = BinanceUSDM().parse(binance_message("SELL"))
    (buy,) = BinanceUSDM().parse(binance_message("BUY"))
    assert sell.is_long and not buy.is_long
    assert sell.usd == pytest.approx(0.014 * 9910)
    assert sell.time_ms == T and sell.symbol == "BTCUSDT"


def test_bybit_buy_is_a_liquidated_long_and_a_batch_gives_every_event() -> None:
    buy = {"T": T, "s": "BTCUSDT", "S": "Buy", "v": "1.5", "p": "60000"}
    sell = {"T": T + 5, "s": "BTCUSDT", "S": "Sell", "v": "0.1", "p": "60010"}
    events = Bybit().parse(bybit_message(buy, sell))
    assert [e.is_long for e in events] == [True, False]
    assert [e.usd for e in events] == pytest.approx([90_000.0, 6_001.0])


def test_acknowledgements_and_pongs_carry_no_events() -> None:
    assert Bybit().parse('{"success": true, "ret_msg": "pong", "op": "ping"}') == []
    assert Bybit().parse('{"success": true, "ret_msg": "", "op": "subscribe"}') == []
    assert BinanceUSDM().parse('{"result": null, "id": 1}') == []


@pytest.mark.parametrize(
    ("venue", "text", "problem"),
    [
        (BinanceUSDM(), "{oops", "not JSON"),
        (BinanceUSDM(), "[1]", "not a JSON object"),
        (BinanceUSDM(), binance_message("SIDEWAYS"), "side 'SIDEWAYS'"),
        (BinanceUSDM(), binance_message("SELL", z="-1"), "o.z is '-1'"),
        (BinanceUSDM(), binance_message("SELL", z="abc"), "not a number"),
        (BinanceUSDM(), binance_message("SELL", t=17), "not epoch milliseconds"),
        (BinanceUSDM(), '{"data": {"e": "forceOrder", "o": {"s": "BTCUSDT"}}}', "lacks field"),
        (BinanceUSDM(), '{"data": {"e": "aggTrade"}}', "not a forceOrder event"),
        (Bybit(), bybit_message({"T": T, "s": "BTCUSDT", "S": "Long", "v": "1", "p": "2"}), "side"),
        (Bybit(), bybit_message({"T": T, "s": "BTCUSDT", "S": "Buy", "v": "0", "p": "2"}), "> 0"),
        (Bybit(), bybit_message({"s": "BTCUSDT", "S": "Buy"}), "lacks field"),
        (Bybit(), '{"topic": "publicTrade.BTCUSDT", "data": []}', "unexpected topic"),
        (Bybit(), '{"success": false, "ret_msg": "bad args", "op": "subscribe"}', "refused"),
    ],
)
def test_a_malformed_message_is_refused_with_its_problem(venue, text: str, problem: str) -> None:
    with pytest.raises(MessageError, match=problem):
        venue.parse(text)


def event(t: int, usd: float, long: bool = True, key: object = None) -> Liquidation:
    return Liquidation(t, "BTCUSDT", long, usd, key if key is not None else (t, usd, long))


def test_book_counts_a_repeated_report_once_and_a_late_one_never() -> None:
    book = LiquidationBook()
    bar = T - T % HOUR_MS
    book.connected(bar - 10)
    assert book.add(event(bar + 5, 100.0)) == "counted"
    assert book.add(event(bar + 5, 100.0)) == "duplicate"
    assert book.add(event(bar + 9, 40.0, long=False)) == "counted"
    assert book.add(event(bar + HOUR_MS + 1, 7.0)) == "counted"  # the next bar
    totals = book.close("BTCUSDT", bar, now_ms=bar + HOUR_MS + 20)
    assert (totals.long_usd, totals.short_usd, totals.events) == (100.0, 40.0, 2)
    assert totals.coverage == 1.0
    assert book.add(event(bar + 30, 5.0)) == "late"  # its bar is closed: the total is final
    assert (book.duplicates, book.late) == (1, 1)
    assert book.close("BTCUSDT", bar + HOUR_MS, now_ms=bar + 2 * HOUR_MS).long_usd == 7.0
    assert book.open_bars == 0


def test_book_coverage_is_the_share_of_the_bar_the_stream_was_connected() -> None:
    book = LiquidationBook()
    bar = T - T % HOUR_MS
    book.connected(bar - 5_000)
    book.disconnected(bar + 600_000)  # 10 minutes in
    book.connected(bar + 900_000)  # back after 5 minutes
    assert book.coverage(bar, now_ms=bar + HOUR_MS) == pytest.approx(55 / 60)
    assert book.coverage(bar + HOUR_MS, now_ms=bar + HOUR_MS + 1_800_000) == pytest.approx(0.5)
