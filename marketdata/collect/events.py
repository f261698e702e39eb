"""What a venue's liquidation stream delivers, parsed: one forced order, and a bad message."""

from __future__ import annotations

from dataclasses import dataclass

from flushcast.common.errors import shorten
from flushcast.marketdata.liquidations import LONG_LIQUIDATED_SIDE


class MessageError(ValueError):
    """A stream message that cannot be read as the venue's format (logged, counted, skipped)."""


@dataclass(frozen=True)
class Liquidation:
    """One liquidation as a venue reported it.

    `key` identifies the report itself (the venue's fields as sent), so a message delivered twice
    is counted once; two different liquidations never share every field in practice (none of the
    30,630 recorded Bybit events in the shared data do).
    """

    time_ms: int
    symbol: str
    is_long: bool
    usd: float
    key: tuple


def is_long(venue: str, side: object) -> bool:
    """Does `side`, as `venue` writes it, mark a liquidated long? (`marketdata.liquidations`)"""
    table = LONG_LIQUIDATED_SIDE[venue]
    if side not in table:
        raise MessageError(f"side {shorten(side)} is not one of {sorted(table)}")
    return table[side]


def number(value: object, field: str, *, positive: bool = False) -> float:
    """A numeric field of a message (venues send numbers as text); MessageError if it is not."""
    if isinstance(value, bool):
        raise MessageError(f"{field} is {shorten(value)}, not a number")
    try:
        parsed = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MessageError(f"{field} is {shorten(value)}, not a number") from None
    if not parsed == parsed or parsed in (float("inf"), float("-inf")):
        raise MessageError(f"{field} is {shorten(value)}, not a finite number")
    if parsed < 0 or (positive and parsed == 0):
        raise MessageError(
            f"{field} is {shorten(value)}; it must be {'> 0' if positive else '>= 0'}"
        )
    return parsed


def millis(value: object, field: str) -> int:
    """An epoch-milliseconds field; MessageError unless it is a whole number in a sane range."""
    stamp = number(value, field)
    if stamp != int(stamp) or not 1e12 <= stamp < 1e13:
        raise MessageError(f"{field} is {shorten(value)}, not epoch milliseconds")
    return int(stamp)
