"""Risk bands: a calibrated flush probability read against its horizon's climatology.

A 6 % chance of a flush within 24 hours is ordinary while the same 6 % within 4 hours is
alarming, because longer windows contain more flushes. So bands are set on the relative risk
p / base rate (the training flush rate of that horizon), not on p itself: "elevated" means the
same thing at every horizon. The edges double (1.5x, 3x, 6x) because calibrated probabilities of
rare events spread over orders of magnitude, so equal ratios, not equal differences, are equally
notable; the first sits at 1.5x, not 1x, because a forecast near the usual rate (1.05x) is the
usual risk, not an elevated one. Bands are a reading aid fixed by convention, not fitted; act on
`p_flush`.
"""

from __future__ import annotations

from typing import Literal

Band = Literal["low", "elevated", "high", "extreme"]

EDGES: tuple[tuple[float, Band], ...] = ((6.0, "extreme"), (3.0, "high"), (1.5, "elevated"))
"""(lower edge of relative risk, band), highest first; below 1.5x the base rate is "low"."""


def band(p: float, base_rate: float) -> Band:
    """The band of probability `p` at a horizon whose training flush rate is `base_rate`."""
    if not base_rate > 0:
        raise ValueError(f"base rate must be positive, got {base_rate}")
    ratio = p / base_rate
    return next((name for edge, name in EDGES if ratio >= edge), "low")


def describe() -> str:
    """The edges in words, as the report prints them."""
    lowest = EDGES[-1][0]
    rising = ", ".join(f"{name} from {edge:g}×" for edge, name in reversed(EDGES))
    return f"low below {lowest:g}×, {rising}"


def lower_edges(base_rate: float) -> dict[str, float]:
    """Each band's lowest probability at this base rate (for GET /model)."""
    return {"low": 0.0, **{name: edge * base_rate for edge, name in reversed(EDGES)}}
