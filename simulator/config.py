"""Scenario parameters of the simulator, validated, with named presets.

A scenario is everything that shapes the market except the seed: who is leveraged how much, how
deep the book is, how often news hits, how funding is clamped. Presets make stress tests one word.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PresetName = Literal["calm", "default", "overleveraged"]

# Binance-like maintenance-margin brackets: (highest leverage allowed, maintenance margin rate).
# Higher leverage is only allowed in the smallest bracket, with the thinnest maintenance margin.
MAINTENANCE_BRACKETS: tuple[tuple[float, float], ...] = (
    (125.0, 0.004),
    (100.0, 0.005),
    (50.0, 0.01),
    (20.0, 0.025),
    (10.0, 0.05),
    (5.0, 0.10),
    (4.0, 0.125),
)


def maintenance_margin(leverage: float) -> float:
    """Maintenance-margin rate of the bracket a position at `leverage` must sit in."""
    rate = MAINTENANCE_BRACKETS[0][1]
    for max_leverage, mm in MAINTENANCE_BRACKETS:
        if leverage <= max_leverage:
            rate = mm
    return rate


class SymbolProfile(BaseModel):
    """How one symbol differs from the others: price level, OI size, beta to the leader."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_price: float = Field(gt=0)
    oi_usd: float = Field(gt=0, description="typical open interest, USD")
    beta: float = Field(ge=0, description="response to the leader's 1-min return")
    idio_vol: float = Field(gt=0, description="own volatility relative to the base volatility")


DEFAULT_PROFILES: dict[str, SymbolProfile] = {
    "BTCUSDT": SymbolProfile(start_price=60_000.0, oi_usd=5e9, beta=0.0, idio_vol=1.0),
    "ETHUSDT": SymbolProfile(start_price=3_000.0, oi_usd=2.5e9, beta=0.9, idio_vol=0.55),
    "SOLUSDT": SymbolProfile(start_price=150.0, oi_usd=1e9, beta=1.1, idio_vol=0.9),
}
OTHER_PROFILE = SymbolProfile(start_price=1.0, oi_usd=3e8, beta=1.3, idio_vol=1.0)


class ScenarioConfig(BaseModel):
    """All scenario parameters. Rates are per day or per hour as named; fractions are of OI."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Leverage mix of newly opened positions (heavy at 5-25x, as on retail venues).
    leverage_levels: tuple[float, ...] = (2, 3, 5, 10, 15, 20, 25, 50, 75, 100)
    leverage_weights: tuple[float, ...] = (
        0.08,
        0.1,
        0.17,
        0.2,
        0.15,
        0.13,
        0.1,
        0.04,
        0.015,
        0.015,
    )

    # Order book: USD resting within 1 % of the price, as a fraction of typical OI.
    book_depth: float = Field(0.03, gt=0)
    night_depth: float = Field(0.6, gt=0, le=1, description="depth factor 00-06 UTC")
    weekend_depth: float = Field(0.7, gt=0, le=1, description="depth factor Sat/Sun")
    shock_thinning: float = Field(40.0, ge=0, description="depth lost per unit liquidated/OI")
    depth_recovery_hours: float = Field(4.0, gt=0, description="half-life of a thinned book")
    impact_permanence: float = Field(0.6, ge=0, le=1, description="share of impact that stays")
    impact_halflife_min: float = Field(45.0, gt=0)

    # Volatility: base hourly vol, persistence, compression phases that come and fade at random;
    # breaks (high vol) come only from large shocks and from cascades.
    hourly_vol: float = Field(0.0038, gt=0)
    vol_persistence: float = Field(0.985, ge=0, lt=1, description="hourly AR(1) of log-vol")
    vol_of_vol: float = Field(0.06, ge=0, description="hourly shock sd of log-vol")
    compression_per_day: float = Field(0.08, ge=0, description="rate of entering compression")
    compression_days: float = Field(6.0, gt=0, description="mean length if no shock ends it")
    break_days: float = Field(1.0, gt=0, description="mean length of a break")
    compression_vol: float = Field(0.5, gt=0)
    break_vol: float = Field(1.8, gt=0)
    break_shock: float = Field(
        0.012, ge=0, description="|log move| of a news shock that ends a compression"
    )

    # Trigger hazard: news and large orders arrive at a rate that rises with the market's state.
    shock_rate_per_day: float = Field(0.06, ge=0, description="rate at the neutral state")
    shock_scale: float = Field(0.008, ge=0, description="mean |log move| at the neutral state")
    hazard_leverage: float = Field(
        2.5, ge=0, description="elasticity of the rate to leveraged OI / book depth"
    )
    hazard_leverage_ref: float = Field(
        1.33, gt=0, description="leveraged OI / depth at which the leverage term is neutral"
    )
    hazard_crowding: float = Field(4.0, ge=0, description="log rate per unit |2 long share - 1|")
    hazard_funding: float = Field(0.25, ge=0, description="log rate per bp of hot funding")
    funding_hot: float = Field(0.0002, ge=0, description="|funding - interest| that is hot")
    hazard_quiet: float = Field(2.5, ge=0, description="log rate after quiet_days of low vol")
    quiet_days: float = Field(5.0, gt=0, description="compression length at full effect")
    hazard_bands: float = Field(
        6.0, ge=0, description="log rate per unit of notional within 1 % / depth (to 0.5)"
    )
    hazard_cap_per_hour: float = Field(0.3, gt=0, le=1)
    shock_size_elasticity: float = Field(0.2, ge=0, description="scale ~ hazard multiple^this")
    shock_against_crowd: float = Field(
        4.0, ge=0, description="log-odds of a shock against the crowded side per unit imbalance"
    )
    shock_toward_bands: float = Field(
        1.5, ge=0, description="log-odds of a shock toward the denser side within 1 %"
    )
    hunt_drift: float = Field(
        0.01, ge=0, description="drift toward the denser side, base sd per minute"
    )
    funding_pressure: float = Field(
        2.0, ge=0, description="log move per 8 h against payers per unit of hot funding"
    )

    # Positions: who is leveraged, how much they seek, turnover, rebuild after flushes, crowding.
    leveraged_share: float = Field(
        0.05, gt=0, le=1, description="typical share of OI held by liquidatable traders"
    )
    vol_targeting: float = Field(
        1.0, ge=0, description="leverage sought ~ (typical vol / recent vol)^this"
    )
    leverage_vol_tilt: float = Field(
        1.0, ge=0, description="tilt of new positions' leverage mix per log of calm (vol ratio)"
    )
    vol_memory_hours: float = Field(24.0, gt=0, description="half-life of traders' vol estimate")
    trend_leverage: float = Field(
        0.15, ge=0, description="extra leverage sought per daily sd of 24 h trend"
    )
    demand_cap: float = Field(3.0, ge=1, description="most leverage sought, times typical")
    deleverage_per_hour: float = Field(
        0.1, ge=0, lt=60, description="closing rate of leverage above what is sought"
    )
    margin_call_zone: float = Field(0.006, ge=0, description="log distance to liquidation price")
    margin_call_per_hour: float = Field(
        0.6, ge=0, lt=60, description="share of positions in the zone liquidated per hour"
    )
    background_liq_per_day: float = Field(
        0.05, ge=0, description="share of leveraged OI liquidated at random per day"
    )
    background_liq_sd: float = Field(0.6, ge=0, description="sd of its log intensity")
    background_liq_days: float = Field(0.25, gt=0, description="half-life of that intensity")
    stop_share: float = Field(0.25, ge=0, le=1, description="share of new positions with stops")
    stop_buffer: float = Field(0.002, ge=0, description="log distance of stops beyond the level")
    patient_oi_vol: float = Field(0.003, ge=0, description="hourly sd of the rest of OI (log)")
    patient_vol_targeting: float = Field(
        0.5, ge=0, description="unleveraged OI sought ~ (typical vol / recent vol)^this"
    )
    turnover_per_day: float = Field(0.15, gt=0, description="share of positions closed per day")
    rebuild_per_day: float = Field(1.0, gt=0, description="median speed of refilling OI")
    crowding_persistence: float = Field(0.97, ge=0, lt=1)
    crowding_noise: float = Field(0.12, ge=0)
    trend_chasing: float = Field(8.0, ge=0, description="crowding gained per unit 1-day return")
    funding_close: float = Field(0.3, ge=0, description="extra closing by payers per bp of funding")

    # Funding: premium from the long/short imbalance, clamped the way Binance clamps it.
    premium_per_imbalance: float = Field(0.004, ge=0)
    premium_noise: float = Field(0.00012, ge=0)
    interest_rate: float = Field(0.0001, description="per 8 h")
    interest_clamp: float = Field(0.0005, ge=0)
    funding_clamp: float = Field(0.0075, gt=0, le=0.05, description="|funding| cap per 8 h")

    # Cascade log: what counts as one cascade.
    cascade_min_share: float = Field(
        0.001, gt=0, description="liquidated notional / OI for an episode to be logged"
    )

    @model_validator(mode="after")
    def _check_leverage(self) -> ScenarioConfig:
        if len(self.leverage_levels) != len(self.leverage_weights):
            raise ValueError("leverage_levels and leverage_weights differ in length")
        if not self.leverage_levels or len(self.leverage_levels) > 15:
            raise ValueError("give between 1 and 15 leverage levels")
        if any(not (1 < lev <= 125) for lev in self.leverage_levels):
            raise ValueError("leverage levels must be in (1, 125]")
        if any(w < 0 or not math.isfinite(w) for w in self.leverage_weights):
            raise ValueError("leverage weights must be finite and >= 0")
        if sum(self.leverage_weights) <= 0:
            raise ValueError("leverage weights must not all be zero")
        return self

    @classmethod
    def preset(cls, name: PresetName) -> ScenarioConfig:
        """A named scenario: `calm`, `default` or `overleveraged`."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**PRESETS[name])


PRESETS: dict[str, dict] = {
    "default": {},
    # Low leverage, deep books, little news: cascades are rare and small.
    "calm": {
        "leverage_weights": (0.15, 0.2, 0.25, 0.2, 0.1, 0.06, 0.04, 0.0, 0.0, 0.0),
        "book_depth": 0.06,
        "leveraged_share": 0.025,
        "shock_rate_per_day": 0.03,
        "shock_scale": 0.006,
        "vol_targeting": 0.5,
    },
    # Heavy high leverage, thin books, fast rebuilds: a market primed for flushes.
    "overleveraged": {
        "leverage_weights": (0.01, 0.02, 0.05, 0.12, 0.14, 0.16, 0.16, 0.16, 0.09, 0.09),
        "book_depth": 0.015,
        "leveraged_share": 0.08,
        "rebuild_per_day": 2.0,
        "vol_targeting": 1.5,
        "trend_chasing": 12.0,
    },
}
