"""The per-symbol minute loop, compiled with numba: price, positions, liquidations, funding.

All randomness arrives as pre-drawn arrays (see `drivers`), so the loop is pure arithmetic and
the same seed gives the same market on any machine. The whole state of a symbol lives in a few
arrays (the book `hist, st, ptr`, the scalar state `sv`, the 24-hour rings), so a run can stop at
any hour, be copied, and be continued, with the original randomness (giving the same market as
one uninterrupted run) or with fresh randomness (giving the futures the state allows).

Each hour is 60 minute steps followed by one end-of-hour update: traders' view of volatility,
crowding, the leverage they seek, where they put stops, and the trigger hazard of the next hour
from the state. The hazard and the book near the price at that moment are the ground truth
written per hour.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from flushcast.simulator.book import (
    BIN,
    LONG,
    OFFSET,
    SHORT,
    book_impact,
    close_share,
    margin_calls,
    notional_within,
    open_interest,
    open_position,
    place_stops,
    resolve,
)
from flushcast.simulator.config import ScenarioConfig

MINUTES_PER_HOUR = 60
FUNDING_MINUTES = 8 * 60
MINUTES_PER_WEEK = 7 * 1440

# The scalar parameters the loop reads, in the order of the `params` vector.
PARAM_NAMES: tuple[str, ...] = (
    "book_depth",
    "night_depth",
    "weekend_depth",
    "shock_thinning",
    "depth_recovery_hours",
    "impact_permanence",
    "impact_halflife_min",
    "hourly_vol",
    "vol_persistence",
    "vol_of_vol",
    "compression_per_day",
    "compression_days",
    "break_days",
    "compression_vol",
    "break_vol",
    "break_shock",
    "shock_rate_per_day",
    "shock_scale",
    "hazard_leverage",
    "hazard_leverage_ref",
    "hazard_crowding",
    "hazard_funding",
    "funding_hot",
    "hazard_quiet",
    "quiet_days",
    "hazard_bands",
    "hazard_cap_per_hour",
    "shock_size_elasticity",
    "shock_against_crowd",
    "shock_toward_bands",
    "hunt_drift",
    "funding_pressure",
    "leveraged_share",
    "vol_targeting",
    "leverage_vol_tilt",
    "vol_memory_hours",
    "trend_leverage",
    "demand_cap",
    "deleverage_per_hour",
    "margin_call_zone",
    "margin_call_per_hour",
    "background_liq_per_day",
    "background_liq_sd",
    "background_liq_days",
    "stop_share",
    "stop_buffer",
    "patient_oi_vol",
    "patient_vol_targeting",
    "turnover_per_day",
    "rebuild_per_day",
    "crowding_persistence",
    "crowding_noise",
    "trend_chasing",
    "funding_close",
    "premium_per_imbalance",
    "premium_noise",
    "interest_rate",
    "interest_clamp",
    "funding_clamp",
    "cascade_min_share",
)
(
    P_DEPTH,
    P_NIGHT,
    P_WEEKEND,
    P_THIN,
    P_RECOVERY,
    P_PERM,
    P_IMPACT_HL,
    P_VOL,
    P_VOL_PERS,
    P_VOL_VOL,
    P_COMP_RATE,
    P_COMP_DAYS,
    P_BREAK_DAYS,
    P_COMP_VOL,
    P_BREAK_VOL,
    P_BREAK_SHOCK,
    P_SHOCK_RATE,
    P_SHOCK_SCALE,
    P_HZ_LEV,
    P_HZ_LEV_REF,
    P_HZ_CROWD,
    P_HZ_FUND,
    P_FUND_HOT,
    P_HZ_QUIET,
    P_QUIET_DAYS,
    P_HZ_BANDS,
    P_HZ_CAP,
    P_SIZE_EL,
    P_AGAINST,
    P_TOWARD,
    P_HUNT,
    P_FUND_PRESSURE,
    P_LEV_SHARE,
    P_VOL_TARGET,
    P_LEV_TILT,
    P_VOL_MEMORY,
    P_TREND_LEV,
    P_DEMAND_CAP,
    P_DELEVERAGE,
    P_MC_ZONE,
    P_MC_RATE,
    P_BG_LIQ,
    P_BG_SD,
    P_BG_DAYS,
    P_STOP_SHARE,
    P_STOP_BUFFER,
    P_PATIENT_VOL,
    P_PATIENT_VOL_TARGET,
    P_TURNOVER,
    P_REBUILD,
    P_CROWD_PERS,
    P_CROWD_NOISE,
    P_TREND,
    P_FUND_CLOSE,
    P_PREMIUM,
    P_PREM_NOISE,
    P_INTEREST,
    P_INTEREST_CLAMP,
    P_FUND_CLAMP,
    P_CASCADE_MIN,
) = range(len(PARAM_NAMES))

# Per-symbol constants, in the order of the `consts` vector.
K_Y0, K_OI_REF, K_BETA, K_IDIO, K_WEEK0 = range(5)
N_CONSTS = 5

# The scalar state `sv`: everything the loop carries from one hour to the next.
(
    S_Y,  # log price
    S_YF,  # its fundamental part (impact decays towards it)
    S_X,  # transient impact
    S_LOGVOL,
    S_REGIME,  # 0 calm, 1 compression, 2 break
    S_CROWD,  # log-odds of a new position being long
    S_PREM_NOISE,
    S_THIN,  # book depth factor after shocks
    S_FUNDING,  # rate in force
    S_PREM_SUM,
    S_PREM_N,
    S_REBUILD,  # per-minute refill speed of leveraged OI
    S_PATIENT,  # log deviation of unleveraged OI
    S_SHOCK_AT,  # clock minute of the next shock, -1 if none
    S_SHOCK_MOVE,
    S_SIGMA,  # per-minute sd of the next hour before its regime factor
    S_DEPTH_SEASON,
    S_OI_TARGET,  # typical OI at this price
    S_BOOK_TARGET,  # leveraged OI traders seek
    S_OI_PATIENT,
    S_VOL_FAST,  # traders' EWMA of hourly variance
    S_VOL_SLOW,  # its one-week counterpart
    S_QUIET,  # hours volatility has been compressed
    S_HOUR_VAR,  # sum of squared minute returns this hour
    S_HOUR_HI,
    S_HOUR_LO,
    S_STOP_L,  # log price around which new long stops go
    S_STOP_S,
    S_DRIFT,  # per-minute drift: stop hunting and funding pressure
    S_BROKE,  # a cascade was logged this hour
    S_HOURS,  # hours simulated (ring position)
    S_P_SHOCK,  # the next hour's hazard: probability of a shock,
    S_SCALE,  # its mean |log move|,
    S_P_DOWN,  # and the chance it is downwards
    S_BG_LOG,  # log intensity of liquidations at random (persistent)
    S_PATIENT_LEVEL,  # unleveraged OI held, relative to typical
    S_IN_CASC,
    S_C_START,
    S_C_LAST,
    S_C_L,
    S_C_S,
    S_C_Y0,
    S_C_YMIN,
    S_C_YMAX,
    S_C_TIERS,
    S_C_ROUNDS,
    S_C_BANDS,
    S_C_OI,
    S_Y_END,
    S_P_L,
    S_P_S,
    S_P_YMIN,
    S_P_YMAX,
    S_P_TIERS,
    S_P_ROUNDS,
    S_P_BANDS,
) = range(56)
N_STATE = 56
BUILDUP_STATE: tuple[int, ...] = (
    S_CROWD,
    S_PREM_NOISE,
    S_FUNDING,
    S_PREM_SUM,
    S_PREM_N,
    S_VOL_FAST,
    S_VOL_SLOW,
    S_QUIET,
    S_BOOK_TARGET,
)
"""Scalar build-up state, the traders' side of the market: crowding and the funding it made,
their view of volatility (which sets the leverage they seek) and how long it has been
compressed. With the book (leveraged positions and stops) it is what the oracle without
build-up swaps; price, the exogenous volatility regime, depth and the clock are not build-up."""
# Rings of the last 24 hours: close, high, low.
R_CLOSE, R_HIGH, R_LOW = range(3)

# Hourly output columns.
H_OPEN, H_HIGH, H_LOW, H_CLOSE, H_VOLUME, H_OI, H_FUNDING, H_LIQ_L, H_LIQ_S, H_TAKER, H_LSR = range(
    11
)
N_HOURLY = 11
# Ground-truth columns, per hour: the state at the bar's close and the next hour's hazard.
(
    T_P_SHOCK,
    T_P_SHOCK_1,
    T_P_SHOCK_2,
    T_P_SHOCK_5,
    T_P_DOWN,
    T_MULTIPLE,
    T_LONG_1,
    T_LONG_2,
    T_LONG_5,
    T_SHORT_1,
    T_SHORT_2,
    T_SHORT_5,
    T_LEV_OI,
    T_LONG_SHARE,
    T_DEPTH,
    T_QUIET,
    T_STOPS_1,
) = range(17)
N_TRUTH = 17
SHOCK_CLASSES = (0.01, 0.02, 0.05)
BAND_DISTANCES = (0.01, 0.02, 0.05)
# Cascade log columns (clock minutes).
(
    C_START,
    C_END,
    C_LIQ_L,
    C_LIQ_S,
    C_Y_START,
    C_Y_MIN,
    C_Y_MAX,
    C_Y_END,
    C_TIERS,
    C_ROUNDS,
    C_BANDS,
    C_OI,
) = range(12)
N_CASCADE = 12
CASCADE_GAP_MIN = 15
"""A cascade ends after this many minutes without meaningful liquidations."""
START_SHARE = 2e-4
"""Liquidations in one minute, as a share of OI, that open a cascade episode."""
CONTINUE_SHARE = 3e-5
OPEN_EVERY = 5
"""New positions are opened in batches of this many minutes' flow, at the batch's last price."""
NEAR = 0.01
"""Distance (fraction of price) within which forced-exit bands count as near."""
PATIENT_RANGE = 0.15
"""Unleveraged OI sought moves at most this share either way with volatility."""
PATIENT_HALFLIFE_HOURS = 6.0
"""How fast unleveraged holders move to what they seek."""
BANDS_CAP = 0.5
"""Near notional / depth beyond which denser bands add no more hazard."""
QUIET_RATIO = 0.6
"""Traders' recent variance below this share of the weekly one counts as compressed."""


def param_vector(config: ScenarioConfig) -> np.ndarray:
    return np.array([float(getattr(config, name)) for name in PARAM_NAMES])


def cascade_capacity(hours: int) -> int:
    """Most cascades `hours` can log: each lasts at least one minute plus the closing gap."""
    return hours * MINUTES_PER_HOUR // (CASCADE_GAP_MIN + 1) + 1


def initial_state(params: np.ndarray, consts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scalar state and rings of a symbol before its first minute: flat book, typical vol."""
    y0 = consts[K_Y0]
    base_sigma = params[P_VOL] * consts[K_IDIO] / math.sqrt(60.0)
    sv = np.zeros(N_STATE)
    sv[[S_Y, S_YF, S_HOUR_HI, S_HOUR_LO, S_Y_END, S_P_YMIN, S_P_YMAX]] = y0
    sv[S_THIN] = 1.0
    sv[S_PATIENT_LEVEL] = 1.0
    sv[S_FUNDING] = params[P_INTEREST]
    sv[S_REBUILD] = params[P_REBUILD] / 1440.0
    sv[S_SHOCK_AT] = -1.0
    sv[S_SIGMA] = base_sigma
    sv[S_DEPTH_SEASON] = 1.0
    sv[S_OI_TARGET] = consts[K_OI_REF]
    sv[S_BOOK_TARGET] = consts[K_OI_REF] * params[P_LEV_SHARE]
    sv[S_OI_PATIENT] = consts[K_OI_REF] * (1.0 - params[P_LEV_SHARE])
    sv[S_VOL_FAST] = sv[S_VOL_SLOW] = typical_hourly_var(params, consts)
    sv[S_STOP_L] = y0 - 0.02
    sv[S_STOP_S] = y0 + 0.02
    rings = np.full((3, 24), y0)
    return sv, rings


@njit(cache=True)
def typical_hourly_var(params, consts) -> float:
    """A typical hour's variance of the symbol: its own noise plus what it takes from the leader."""
    return params[P_VOL] ** 2 * (consts[K_IDIO] ** 2 + consts[K_BETA] ** 2)


@njit(cache=True)
def _season(minute_of_week: int, night: float, weekend: float) -> tuple[float, float]:
    """(depth factor, vol factor) for a minute of the week; week starts Monday 00:00 UTC."""
    day = minute_of_week // 1440
    hour = (minute_of_week % 1440) // 60
    depth = 1.0
    vol = 1.0
    if hour < 6:
        depth *= night
        vol *= 0.85
    elif 13 <= hour < 21:  # US session: the busiest hours
        vol *= 1.2
    if day >= 5:
        depth *= weekend
        vol *= 0.75
    return depth, vol


@njit(cache=True)
def _round_step(price: float) -> float:
    """Spacing of round prices near `price`: 10^(digits-2), e.g. $1,000 at $60,000."""
    return 10.0 ** (math.floor(math.log10(price)) - 1.0)


@njit(cache=True)
def hazard(params, hist, st, ptr, sv, depth: float):
    """The next hour's trigger hazard from the state, and what it is made of.

    Returns (p_shock, scale, p_down, multiple, near_long, near_short): the probability that a
    shock arrives, the mean |log move| of one, the chance it is downwards, the rate's multiple
    of the neutral rate, and the notional (liquidations and stops) within 1 % each side.
    The rate rises with leveraged OI per unit of depth, with crowding (one side's share of the
    leveraged book), with hot funding, with how long volatility has been compressed, and with
    dense forced-exit bands near the price; shocks lean against the crowded side and toward the
    denser bands (stop hunting).
    """
    oi_l = open_interest(st, LONG)
    oi_s = open_interest(st, SHORT)
    oi = oi_l + oi_s
    y = sv[S_Y]
    near_l = notional_within(hist, st, ptr, LONG, y, -math.log(1.0 - NEAR), True)
    near_s = notional_within(hist, st, ptr, SHORT, y, math.log(1.0 + NEAR), True)
    lev = max(oi / depth / params[P_HZ_LEV_REF], 1e-3)
    side = (oi_l - oi_s) / oi if oi > 0.0 else 0.0
    heat = max(abs(sv[S_FUNDING] - params[P_INTEREST]) - params[P_FUND_HOT], 0.0) / 0.0001
    quiet = min(sv[S_QUIET] / (params[P_QUIET_DAYS] * 24.0), 1.0)
    bands = min((near_l + near_s) / depth, BANDS_CAP)
    log_multiple = (
        params[P_HZ_LEV] * math.log(lev)
        + params[P_HZ_CROWD] * abs(side)
        + params[P_HZ_FUND] * min(heat, 20.0)
        + params[P_HZ_QUIET] * quiet
        + params[P_HZ_BANDS] * bands
    )
    multiple = math.exp(min(log_multiple, 12.0))
    rate = min(params[P_SHOCK_RATE] / 24.0 * multiple, params[P_HZ_CAP])
    scale = params[P_SHOCK_SCALE] * min(multiple, 20.0) ** params[P_SIZE_EL]
    lean = (near_l - near_s) / (near_l + near_s) if near_l + near_s > 0.0 else 0.0
    z = params[P_AGAINST] * side + params[P_TOWARD] * lean
    p_down = 1.0 / (1.0 + math.exp(-z))
    return 1.0 - math.exp(-rate), scale, p_down, multiple, near_l, near_s


@njit(cache=True)
def _end_of_hour(
    params,
    hist,
    st,
    ptr,
    sv,
    rings,
    consts,
    clock_next: int,
    h: int,
    eps_vol,
    u_regime,
    eps_crowd,
    eps_prem,
    eps_oi,
    eps_bg,
    truth_row,
):
    """Update the hourly state after an hour's minutes; set the next hour's hazard."""
    base_sigma = params[P_VOL] * consts[K_IDIO] / math.sqrt(60.0)
    typical_var = typical_hourly_var(params, consts)
    y = sv[S_Y]

    # Traders' view of volatility, and how long it has been compressed.
    a_fast = 0.5 ** (1.0 / params[P_VOL_MEMORY])
    a_slow = 0.5 ** (1.0 / 168.0)
    sv[S_VOL_FAST] = a_fast * sv[S_VOL_FAST] + (1.0 - a_fast) * sv[S_HOUR_VAR]
    sv[S_VOL_SLOW] = a_slow * sv[S_VOL_SLOW] + (1.0 - a_slow) * sv[S_HOUR_VAR]
    if sv[S_VOL_FAST] < QUIET_RATIO * sv[S_VOL_SLOW]:
        sv[S_QUIET] += 1.0
    elif sv[S_VOL_FAST] > sv[S_VOL_SLOW]:
        sv[S_QUIET] = 0.0
    sv[S_HOUR_VAR] = 0.0

    # The last 24 hours: momentum, highs and lows.
    k = int(sv[S_HOURS]) % 24
    mom = y - rings[R_CLOSE, k]
    rings[R_CLOSE, k] = y
    rings[R_HIGH, k] = sv[S_HOUR_HI]
    rings[R_LOW, k] = sv[S_HOUR_LO]
    sv[S_HOURS] += 1.0
    sv[S_HOUR_HI] = y
    sv[S_HOUR_LO] = y
    hi24 = rings[R_HIGH].max()
    lo24 = rings[R_LOW].min()

    # Crowding: persistent noise plus trend chasing on the last 24 h.
    crowd = params[P_CROWD_PERS] * sv[S_CROWD] + params[P_CROWD_NOISE] * eps_crowd[h]
    crowd += params[P_TREND] * mom / 24.0
    sv[S_CROWD] = min(max(crowd, -2.5), 2.5)
    # Premium noise is slow (basis trades), sd premium_noise, hourly AR 0.99.
    sv[S_PREM_NOISE] = 0.99 * sv[S_PREM_NOISE] + params[P_PREM_NOISE] * 0.141 * eps_prem[h]
    sv[S_PATIENT] = 0.99 * sv[S_PATIENT] + params[P_PATIENT_VOL] * eps_oi[h]

    # Leverage sought: vol targeting (quiet markets invite leverage) and trend chasing.
    daily_sd = math.sqrt(typical_var * 24.0)
    cap = params[P_DEMAND_CAP]
    demand = (typical_var / max(sv[S_VOL_FAST], 1e-30)) ** (0.5 * params[P_VOL_TARGET])
    demand = min(max(demand, 1.0 / cap), cap) * (1.0 + params[P_TREND_LEV] * abs(mom) / daily_sd)
    oi_target = consts[K_OI_REF] * math.exp(y - consts[K_Y0])
    sv[S_OI_TARGET] = oi_target
    sv[S_BOOK_TARGET] = oi_target * params[P_LEV_SHARE] * min(demand, cap)
    # Unleveraged holders de-risk when volatility rises above the week's, and add back, gradually.
    calm = (sv[S_VOL_SLOW] / max(sv[S_VOL_FAST], 1e-30)) ** (0.5 * params[P_PATIENT_VOL_TARGET])
    calm = min(max(calm, 1.0 - PATIENT_RANGE), 1.0 + PATIENT_RANGE)
    a = 0.5 ** (1.0 / PATIENT_HALFLIFE_HOURS)
    sv[S_PATIENT_LEVEL] = a * sv[S_PATIENT_LEVEL] + (1.0 - a) * calm
    level = sv[S_PATIENT_LEVEL] * math.exp(sv[S_PATIENT])
    sv[S_OI_PATIENT] = oi_target * (1.0 - params[P_LEV_SHARE]) * level
    # Stress of cross-margined accounts elsewhere: persistent, so some weeks liquidate more.
    phi = 0.5 ** (1.0 / (params[P_BG_DAYS] * 24.0))
    sv[S_BG_LOG] = phi * sv[S_BG_LOG] + params[P_BG_SD] * math.sqrt(1.0 - phi * phi) * eps_bg[h]

    # Stops: beyond the 24 h low / high or the nearest round price, whichever is nearer.
    price = math.exp(y)
    step = _round_step(price)
    below = math.floor(price / step) * step
    buffer = params[P_STOP_BUFFER]
    sv[S_STOP_L] = max(lo24, math.log(below)) - buffer
    sv[S_STOP_S] = min(hi24, math.log(below + step)) + buffer

    # Volatility regime and season of the next hour.
    # Compressions come and fade at random; breaks come only from shocks and cascades.
    regime = int(sv[S_REGIME])
    u = u_regime[h]
    days = params[P_COMP_DAYS] if regime == 1 else params[P_BREAK_DAYS]
    if regime == 0 and u < params[P_COMP_RATE] / 24.0:
        regime = 1
    elif regime > 0 and u < 1.0 / (days * 24.0):
        regime = 0
    depth_season, vol_season = _season(
        (int(consts[K_WEEK0]) + clock_next) % MINUTES_PER_WEEK, params[P_NIGHT], params[P_WEEKEND]
    )
    sv[S_DEPTH_SEASON] = depth_season
    sv[S_LOGVOL] = params[P_VOL_PERS] * sv[S_LOGVOL] + params[P_VOL_VOL] * eps_vol[h]

    # The trigger hazard of the next hour, from the state (drawn at the hour's start).
    depth = params[P_DEPTH] * oi_target * depth_season * sv[S_THIN]
    p_shock, scale, p_down, multiple, near_l, near_s = hazard(params, hist, st, ptr, sv, depth)
    sv[S_P_SHOCK] = p_shock
    sv[S_SCALE] = scale
    sv[S_P_DOWN] = p_down
    if sv[S_BROKE] > 0.0:
        regime = 2  # a cascade ends a quiet market
    sv[S_BROKE] = 0.0
    sv[S_REGIME] = regime
    sv[S_SIGMA] = base_sigma * math.exp(sv[S_LOGVOL]) * vol_season

    # Drift of the next hour: towards the denser bands (stop hunting), against hot funding's
    # payers (basis traders sell a rich perpetual and buy a cheap one).
    lean = (near_s - near_l) / (near_l + near_s) if near_l + near_s > 0.0 else 0.0
    hot = sv[S_FUNDING] - params[P_INTEREST]
    hot = math.copysign(max(abs(hot) - params[P_FUND_HOT], 0.0), hot)
    sv[S_DRIFT] = (
        params[P_HUNT] * base_sigma * lean * min((near_l + near_s) / depth, 1.0)
        - params[P_FUND_PRESSURE] * hot / FUNDING_MINUTES
    )
    # Ground truth: the next hour's hazard and the book at this close.
    oi_l = open_interest(st, LONG)
    oi_s = open_interest(st, SHORT)
    truth_row[T_P_SHOCK] = p_shock
    for c in range(3):
        truth_row[T_P_SHOCK_1 + c] = p_shock * math.exp(-SHOCK_CLASSES[c] / scale)
        d = -math.log(1.0 - BAND_DISTANCES[c])
        truth_row[T_LONG_1 + c] = notional_within(hist, st, ptr, LONG, y, d, False)
        d = math.log(1.0 + BAND_DISTANCES[c])
        truth_row[T_SHORT_1 + c] = notional_within(hist, st, ptr, SHORT, y, d, False)
    truth_row[T_P_DOWN] = p_down
    truth_row[T_MULTIPLE] = multiple
    truth_row[T_LEV_OI] = oi_l + oi_s
    truth_row[T_LONG_SHARE] = oi_l / (oi_l + oi_s) if oi_l + oi_s > 0.0 else 0.5
    truth_row[T_DEPTH] = depth
    truth_row[T_QUIET] = sv[S_QUIET]
    truth_row[T_STOPS_1] = near_l + near_s - truth_row[T_LONG_1] - truth_row[T_SHORT_1]


@njit(cache=True)
def _start_of_hour(params, sv, clock: int, u_shock, e_shock, u_dir, minute):
    """Draw this hour's shock from the hazard the state set; return (sigma, random liq share).

    The draw happens here, not at the previous close, so a state saved at a close holds the
    hazard but not its outcome: continuations with fresh draws get fresh shocks.
    """
    sv[S_SHOCK_AT] = -1.0
    regime = int(sv[S_REGIME])
    if u_shock < sv[S_P_SHOCK]:
        move = sv[S_SCALE] * e_shock
        sv[S_SHOCK_AT] = clock + minute
        sv[S_SHOCK_MOVE] = -move if u_dir < sv[S_P_DOWN] else move
        if move >= params[P_BREAK_SHOCK]:
            regime = 2  # news big enough ends a quiet market
    sv[S_REGIME] = regime
    mult = 1.0
    if regime == 1:
        mult = params[P_COMP_VOL]
    elif regime == 2:
        mult = params[P_BREAK_VOL]
    # Liquidations at random (cross-margin accounts, other positions): lognormal intensity.
    bg = params[P_BG_LIQ] / 1440.0 * math.exp(sv[S_BG_LOG] - 0.5 * params[P_BG_SD] ** 2)
    return sv[S_SIGMA] * mult, bg


@njit(cache=True)
def run(
    params,
    hist,
    st,
    ptr,
    sv,
    rings,
    consts,
    long_off,
    short_off,
    tier_weights,
    log_leverage,
    leader_ret,
    clock0: int,
    log_from: int,
    final: bool,
    eps_min,
    eps_vol,
    u_regime,
    u_shock,
    e_shock,
    u_dir,
    shock_minute,
    eps_crowd,
    eps_prem,
    eps_oi,
    rebuild_draw,
    eps_bg,
    hourly,
    truth,
    ret,
    casc,
    n_casc: int,
) -> int:
    """Advance one symbol by `eps_min.shape[0]` minutes (whole hours) from clock `clock0`.

    The state arrays are updated in place. Writes per hour `hourly` and `truth` rows, per
    minute `ret` (log returns, for the symbols that follow this one), and appends cascades
    starting at or after clock `log_from` to `casc` from row `n_casc`; returns the new count.
    `leader_ret[i]` is the leader's return of the minute before minute i (empty: no leader).
    `final` closes a cascade still open at the last minute.
    """
    n_min = eps_min.shape[0]
    n_lev = tier_weights.shape[0]
    decay = 0.5 ** (1.0 / params[P_IMPACT_HL])
    recover = 0.5 ** (1.0 / (params[P_RECOVERY] * 60.0))
    perm = params[P_PERM]
    mc_zone = int(params[P_MC_ZONE] / BIN)
    mc_share = params[P_MC_RATE] / 60.0
    base_close = params[P_TURNOVER] / 1440.0
    base_sigma = params[P_VOL] * consts[K_IDIO] / math.sqrt(60.0)
    delever = params[P_DELEVERAGE] / 60.0
    stop_share = params[P_STOP_SHARE]
    over = params[P_FUND_CLOSE] / 0.0001
    beta = consts[K_BETA]
    leader = leader_ret.shape[0] > 0
    max_casc = casc.shape[0]
    typical_var = typical_hourly_var(params, consts)
    mix = np.empty(n_lev)
    pending = 0.0

    y = sv[S_Y]
    yf = sv[S_YF]
    x = sv[S_X]
    thin = sv[S_THIN]
    funding = sv[S_FUNDING]
    prem_sum = sv[S_PREM_SUM]
    prem_n = sv[S_PREM_N]
    rebuild = sv[S_REBUILD]
    hour_var = sv[S_HOUR_VAR]
    hour_hi = sv[S_HOUR_HI]
    hour_lo = sv[S_HOUR_LO]
    in_casc = sv[S_IN_CASC] > 0.0
    c_start = int(sv[S_C_START])
    c_last = int(sv[S_C_LAST])
    c_l = sv[S_C_L]
    c_s = sv[S_C_S]
    c_y0 = sv[S_C_Y0]
    c_ymin = sv[S_C_YMIN]
    c_ymax = sv[S_C_YMAX]
    c_tiers = int(sv[S_C_TIERS])
    c_rounds = int(sv[S_C_ROUNDS])
    c_bands = int(sv[S_C_BANDS])
    c_oi = sv[S_C_OI]
    y_end = sv[S_Y_END]
    p_l = sv[S_P_L]
    p_s = sv[S_P_S]
    p_ymin = sv[S_P_YMIN]
    p_ymax = sv[S_P_YMAX]
    p_tiers = int(sv[S_P_TIERS])
    p_rounds = int(sv[S_P_ROUNDS])
    p_bands = int(sv[S_P_BANDS])

    for i in range(n_min):
        clock = clock0 + i
        o = i // MINUTES_PER_HOUR
        if i % MINUTES_PER_HOUR == 0:
            sigma, bg = _start_of_hour(
                params, sv, clock, u_shock[o], e_shock[o], u_dir[o], shock_minute[o]
            )
            # Leverage mix of new positions: quiet markets tilt it to high leverage (traders
            # keep their liquidation a few recent sds away), so bands pack near the price.
            calm = 0.5 * math.log(typical_var / max(sv[S_VOL_FAST], 1e-30))
            tilt = params[P_LEV_TILT] * min(max(calm, -1.1), 1.1)
            for t in range(n_lev):
                mix[t] = tier_weights[t] * math.exp(tilt * log_leverage[t])
            mix /= mix.sum()
        oi_target = sv[S_OI_TARGET]
        book_target = sv[S_BOOK_TARGET]

        # Exogenous move: own noise, the leader's last minute, drift, news.
        r = sigma * eps_min[i] + sv[S_DRIFT]
        if leader:
            r += beta * leader_ret[i]
        if clock == int(sv[S_SHOCK_AT]):
            r += sv[S_SHOCK_MOVE]
            thin *= 0.5
        y_prev = y
        yf += r
        x *= decay
        y = yf + x
        y_exo = y

        # Forced exits walk the book; their impact may cross the next band.
        depth = params[P_DEPTH] * oi_target * sv[S_DEPTH_SEASON] * thin
        mc_l, mc_s = margin_calls(hist, st, ptr, y, mc_zone, mc_share)
        oi_l = open_interest(st, LONG)
        oi_s = open_interest(st, SHORT)
        close_share(hist, st, LONG, bg)
        close_share(hist, st, SHORT, bg)
        mc_l += bg * oi_l
        mc_s += bg * oi_s
        y += book_impact(mc_s - mc_l, depth)
        y_new, liq_l, liq_s, stops, rounds, tiers, bands = resolve(hist, st, ptr, y, depth)
        liq_l += mc_l
        liq_s += mc_s
        dy = y_new - y
        yf += perm * dy
        x += (1.0 - perm) * dy
        y = y_new
        liq = liq_l + liq_s
        if liq > 0.0:
            thin = max(0.15, thin * math.exp(-params[P_THIN] * liq / oi_target))
        thin = 1.0 - (1.0 - thin) * recover

        # Voluntary closes (payers of funding close more, leverage above what is sought is
        # cut) and new opens near the price, some with stops instead of a far liquidation.
        oi_l = open_interest(st, LONG)
        oi_s = open_interest(st, SHORT)
        excess = max((oi_l + oi_s) / book_target - 1.0, 0.0) * delever
        close_share(
            hist, st, LONG, min(base_close * (1.0 + over * max(funding, 0.0)) + excess, 0.5)
        )
        close_share(
            hist, st, SHORT, min(base_close * (1.0 + over * max(-funding, 0.0)) + excess, 0.5)
        )
        oi_l = open_interest(st, LONG)
        oi_s = open_interest(st, SHORT)
        pending += base_close * book_target + rebuild * max(book_target - oi_l - oi_s, 0.0)
        if (i + 1) % OPEN_EVERY == 0:  # whole hours hold whole batches: nothing carries over
            share_long = 1.0 / (1.0 + math.exp(-sv[S_CROWD]))
            levered = pending * (1.0 - stop_share)
            for t in range(n_lev):
                w = mix[t] * levered
                if w > 0.0:
                    open_position(hist, st, ptr, LONG, t, y, long_off[t], w * share_long)
                    open_position(hist, st, ptr, SHORT, t, y, short_off[t], w * (1.0 - share_long))
            stopped = pending * stop_share
            if stopped > 0.0:
                stop_l = min(sv[S_STOP_L], y - 0.002)
                stop_s = max(sv[S_STOP_S], y + 0.002)
                place_stops(hist, st, ptr, LONG, y, stop_l, stopped * share_long, 2)
                place_stops(hist, st, ptr, SHORT, y, stop_s, stopped * (1.0 - share_long), 2)
            pending = 0.0
        oi_l = open_interest(st, LONG)
        oi_s = open_interest(st, SHORT)
        oi = oi_l + oi_s

        # Funding: premium from the crowded side, settled every 8 h, Binance's clamp.
        imbalance = (oi_l - oi_s) / oi if oi > 0.0 else 0.0
        prem_sum += params[P_PREMIUM] * imbalance + sv[S_PREM_NOISE]
        prem_n += 1.0
        if (clock + 1) % FUNDING_MINUTES == 0:
            avg = prem_sum / prem_n
            rate = avg + min(
                max(params[P_INTEREST] - avg, -params[P_INTEREST_CLAMP]), params[P_INTEREST_CLAMP]
            )
            funding = min(max(rate, -params[P_FUND_CLAMP]), params[P_FUND_CLAMP])
            st[OFFSET] += funding  # payers lose margin, receivers gain it: all exits shift
            prem_sum = 0.0
            prem_n = 0.0

        step = y - y_prev
        ret[i] = step
        hour_var += step * step
        move = abs(step) / base_sigma
        volume = oi_target * 0.0016 * (0.4 + 0.6 * move) + liq + stops
        tilt = min(max(step / (4.0 * base_sigma), -0.6), 0.6)
        taker = (volume - liq - stops) * 0.5 * (1.0 + tilt) + liq_s + 0.5 * stops

        hi = max(y_exo, y)
        lo = min(y_exo, y)
        hour_hi = max(hour_hi, hi)
        hour_lo = min(hour_lo, lo)
        row = hourly[o]
        if i % MINUTES_PER_HOUR == 0:
            row[H_OPEN] = y_prev
            row[H_HIGH] = max(y_prev, hi)
            row[H_LOW] = min(y_prev, lo)
            row[H_VOLUME] = 0.0
            row[H_TAKER] = 0.0
            row[H_LIQ_L] = 0.0
            row[H_LIQ_S] = 0.0
        row[H_HIGH] = max(row[H_HIGH], hi)
        row[H_LOW] = min(row[H_LOW], lo)
        row[H_CLOSE] = y
        row[H_VOLUME] += volume
        row[H_TAKER] += taker
        row[H_LIQ_L] += liq_l
        row[H_LIQ_S] += liq_s
        row[H_OI] = oi + sv[S_OI_PATIENT]
        row[H_FUNDING] = funding
        row[H_LSR] = oi_l / oi_s if oi_s > 0.0 else np.nan

        # Cascade log: an episode of sustained liquidations; logged if big and self-feeding.
        if not in_casc and liq >= START_SHARE * oi_target:
            in_casc = True
            c_start = clock
            c_l = 0.0
            c_s = 0.0
            c_y0 = y_prev
            c_ymin = y_prev
            c_ymax = y_prev
            c_tiers = 0
            c_rounds = 0
            c_bands = 0
            c_oi = oi_target
            c_last = clock
            p_l = 0.0
            p_s = 0.0
            p_ymin = y_prev
            p_ymax = y_prev
            p_tiers = 0
            p_rounds = 0
            p_bands = 0
        if in_casc:
            # Minutes after the last active one count only if the cascade picks up again.
            p_l += liq_l
            p_s += liq_s
            p_ymin = min(p_ymin, y, y_exo)
            p_ymax = max(p_ymax, y, y_exo)
            p_tiers |= tiers
            p_rounds = max(p_rounds, rounds)
            p_bands += bands
            if liq >= CONTINUE_SHARE * oi_target:
                c_last = clock
                c_l += p_l
                c_s += p_s
                c_ymin = min(c_ymin, p_ymin)
                c_ymax = max(c_ymax, p_ymax)
                c_tiers |= p_tiers
                c_rounds = max(c_rounds, p_rounds)
                c_bands += p_bands
                y_end = y
                p_l = 0.0
                p_s = 0.0
                p_ymin = y
                p_ymax = y
                p_tiers = 0
                p_rounds = 0
                p_bands = 0
            if clock - c_last > CASCADE_GAP_MIN or (final and i == n_min - 1):
                in_casc = False
                if c_l + c_s >= params[P_CASCADE_MIN] * c_oi and c_rounds >= 2:
                    if c_start >= log_from and n_casc < max_casc:
                        out = casc[n_casc]
                        out[C_START] = c_start
                        out[C_END] = c_last
                        out[C_LIQ_L] = c_l
                        out[C_LIQ_S] = c_s
                        out[C_Y_START] = c_y0
                        out[C_Y_MIN] = c_ymin
                        out[C_Y_MAX] = c_ymax
                        out[C_Y_END] = y_end
                        out[C_TIERS] = c_tiers
                        out[C_ROUNDS] = c_rounds
                        out[C_BANDS] = c_bands
                        out[C_OI] = c_oi
                        n_casc += 1
                    # After a flush, traders come back at a speed of their own; vol breaks out.
                    rebuild = params[P_REBUILD] / 1440.0 * math.exp(0.7 * rebuild_draw[o])
                    sv[S_BROKE] = 1.0

        if i % MINUTES_PER_HOUR == MINUTES_PER_HOUR - 1:
            sv[S_Y] = y
            sv[S_YF] = yf
            sv[S_X] = x
            sv[S_THIN] = thin
            sv[S_FUNDING] = funding
            sv[S_HOUR_VAR] = hour_var
            sv[S_HOUR_HI] = hour_hi
            sv[S_HOUR_LO] = hour_lo
            _end_of_hour(
                params,
                hist,
                st,
                ptr,
                sv,
                rings,
                consts,
                clock + 1,
                o,
                eps_vol,
                u_regime,
                eps_crowd,
                eps_prem,
                eps_oi,
                eps_bg,
                truth[o],
            )
            hour_var = 0.0
            hour_hi = y
            hour_lo = y

    sv[S_PREM_SUM] = prem_sum
    sv[S_PREM_N] = prem_n
    sv[S_REBUILD] = rebuild
    sv[S_IN_CASC] = 1.0 if in_casc else 0.0
    sv[S_C_START] = c_start
    sv[S_C_LAST] = c_last
    sv[S_C_L] = c_l
    sv[S_C_S] = c_s
    sv[S_C_Y0] = c_y0
    sv[S_C_YMIN] = c_ymin
    sv[S_C_YMAX] = c_ymax
    sv[S_C_TIERS] = c_tiers
    sv[S_C_ROUNDS] = c_rounds
    sv[S_C_BANDS] = c_bands
    sv[S_C_OI] = c_oi
    sv[S_Y_END] = y_end
    sv[S_P_L] = p_l
    sv[S_P_S] = p_s
    sv[S_P_YMIN] = p_ymin
    sv[S_P_YMAX] = p_ymax
    sv[S_P_TIERS] = p_tiers
    sv[S_P_ROUNDS] = p_rounds
    sv[S_P_BANDS] = p_bands
    return n_casc
