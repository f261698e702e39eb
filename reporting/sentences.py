"""Plain-language readings of feature values and their contributions, built from the registry.

A trader reads "Funding is 3.1 σ above its 30-day mean (higher than 97 % of training bars):
+1.2 points of probability", not `funding_z_30d=3.1, shap=0.12`. Every sentence is assembled
from the registry entry (description, unit, lookback), so a new feature gets a sentence without code
here; a unit listed in `_FORMATS` only reads more naturally.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pandas as pd

from flushcast.features.spec import Feature

SUBJECTS = {
    "funding": ("Funding is", "its"),
    "open_interest": ("Open interest is", "its"),
    "liquidations": ("Liquidations are", "their"),
}
"""Subject and possessive of each family's z-score: "Funding is 3.1 σ above its 30-day mean"."""

_FORMATS: dict[str, Callable[[float], str]] = {
    "bp per 8 h": lambda v: f"{v:+.2f} bp per 8 h",
    "% per year": lambda v: f"{v:+.1f} % a year",
    "std devs": lambda v: f"{v:+.1f} σ",
    "fraction": lambda v: f"{100 * v:.0f} %",
    "%": lambda v: f"{v:+.2f} %",
    "ratio": lambda v: f"{v:.2f}",
    "hours": lambda v: f"{v:.0f} h",
    "% of OI": lambda v: f"{v:.3f} % of OI",
    "-1..1": lambda v: f"{v:+.2f}",
    "% per day": lambda v: f"{v:.2f} % a day",
    "% of price": lambda v: f"{v:.3f} % of price",
    "hour (UTC)": lambda v: f"{v:02.0f}:00 UTC",
    "0/1": lambda v: "yes" if v >= 0.5 else "no",
}


NO_PERCENTILE = ("hour (UTC)", "0/1", "code")
"""Units of clock, calendar and coded features: "higher than 90 % of training bars" means nothing
there."""


def ranked(feature: Feature) -> bool:
    """Whether a percentile of this feature's value is meaningful."""
    return not feature.unit.startswith(NO_PERCENTILE)


def when(stamp: pd.Timestamp | str) -> str:
    """A bar time as traders read it (UTC)."""
    return pd.Timestamp(stamp).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def percent(p: float) -> str:
    """A probability with two significant digits: 0.0071 → "0.71 %", 0.25 → "25 %".

    Near-certainty is never rounded up to "100 %": a model is not that sure.
    """
    value = 100 * p
    if value >= 99.5:
        return "over 99 %"
    return f"{value:.0f} %" if value >= 10 else f"{value:.2g} %"


def codes(description: str) -> dict[int, str]:
    """The meanings of a coded feature, read from its description ("0 = longs building (…)")."""
    return {int(k): text.strip() for k, text in re.findall(r"(\d+) = ([^;(]+)", description)}


def format_value(feature: Feature, value: float | None) -> str:
    """The value in the feature's unit, as a trader would write it; "missing" for NaN/None."""
    if value is None or math.isnan(value):
        return "missing"
    if feature.unit.startswith("code"):
        meaning = codes(feature.description).get(round(value))
        return f"{value:.0f}: {meaning}" if meaning else f"{value:.0f}"
    fmt = _FORMATS.get(feature.unit)
    return fmt(value) if fmt else f"{value:.4g} {feature.unit}"


def percentile_phrase(percentile: float | None) -> str:
    """Where a value sits among the training bars, e.g. "higher than 97 % of training bars"."""
    if percentile is None or math.isnan(percentile):
        return ""
    share = round(100 * percentile)
    if share >= 50:
        return f"higher than {share} % of training bars"
    return f"lower than {100 - share} % of training bars"


def reading(feature: Feature, value: float | None) -> str:
    """What the feature says now: a z-score as σ from its mean, otherwise description and value."""
    if value is None or math.isnan(value):
        return f"{_strip(feature.description)}: missing (the model took its missing-value branch)"
    if feature.unit == "std devs" and feature.family in SUBJECTS:
        subject, its = SUBJECTS[feature.family]
        side = "above" if value >= 0 else "below"
        days = max(1, round(feature.lookback / 24))
        return f"{subject} {abs(value):.1f} σ {side} {its} {days}-day mean"
    head = feature.description.split(": ")[0] if feature.unit.startswith("code") else None
    return f"{_strip(head or feature.description)}: {format_value(feature, value)}"


def sentence(
    feature: Feature, value: float | None, change: float, percentile: float | None = None
) -> str:
    """One reason: the reading, where it sits in training, and what it does to the probability
    (`change`: the flush probability minus what it would be without this contribution)."""
    known = value is not None and not math.isnan(value)
    where = percentile_phrase(percentile) if known and ranked(feature) else ""
    context = f" ({where})" if where else ""
    return f"{reading(feature, value)}{context}: {shift(change)}."


def shift(change: float) -> str:
    """A change of probability in percentage points, signed, two significant digits."""
    points = 100 * change
    if abs(points) < 0.005:
        return "no visible change to the probability"
    return f"{points:+.2g} points of probability"


def effect(contribution: float) -> str:
    """A log-odds contribution to two decimals, with a sign; never "-0.00"."""
    return "0.00" if abs(contribution) < 0.005 else f"{contribution:+.2f}"


def symbol_sentence(symbol: str, change: float) -> str:
    """The pooled model's own adjustment for the symbol (`change` as in `sentence`)."""
    pooled = "the model is pooled over symbols"
    return f"Being {symbol} ({pooled}): {shift(change)}."


def _strip(description: str) -> str:
    return description.rstrip(". ")
