"""The per-symbol minute loop, compiled with numba: price, positions, liquidations, funding.

All randomness arrives as pre-drawn arrays (see `drivers`), so the loop is pure arithmetic and
the same seed gives the same market on any machine. The loop writes hourly bars and the cascade
log directly, so a year of minutes never exists as a minute-level frame in memory.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from simulator.book import (
    BIN,
    LONG,
    OFFSET,
    SHORT,
    book_impact,
    close_share,
    margin_calls,
    open_interest,
    open_position,
    resolve,
)
from simulator.config import ScenarioConfig

MINUTES_PER_HOUR = 60
FUNDING_MINUTES = 8 * 60

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
    "compression_oi_build",
    "shock_rate_per_day",
    "leveraged_share",
    "margin_call_zone",
    "margin_call_per_hour",
    "patient_oi_vol",
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
    P_COMP_OI,
    P_SHOCK_RATE,
    P_LEV_SHARE,
    P_MC_ZONE,
    P_MC_RATE,
    P_PATIENT_VOL,
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

# Hourly output columns.
H_OPEN, H_HIGH, H_LOW, H_CLOSE, H_VOLUME, H_OI, H_FUNDING, H_LIQ_L, H_LIQ_S, H_TAKER, H_LSR = range(
    11
)
N_HOURLY = 11
# Cascade log columns (minutes counted from the end of the burn-in).
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
MAX_CASCADES = 50_000
CASCADE_GAP_MIN = 15
"""A cascade ends after this many minutes without meaningful liquidations."""
START_SHARE = 2e-4
"""Liquidations in one minute, as a share of OI, that open a cascade episode."""
CONTINUE_SHARE = 3e-5


def param_vector(config: ScenarioConfig) -> np.ndarray:
    return np.array([float(getattr(config, name)) for name in PARAM_NAMES])


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
def run_symbol(
    params,
    hist,
    st,
    ptr,
    long_off,
    short_off,
    tier_weights,
    y0: float,
    oi_ref: float,
    beta: float,
    idio_vol: float,
    leader_ret,
    start_minute_of_week: int,
    burn_min: int,
    eps_min,
    eps_vol,
    u_regime,
    u_shock,
    shock_size,
    shock_minute,
    eps_crowd,
    eps_prem,
    eps_oi,
    rebuild_draw,
):
    """Simulate one symbol; returns (hourly bars, minute log returns, cascade log, n cascades)."""
    n_min = eps_min.shape[0]
    n_tiers = tier_weights.shape[0]
    n_out = (n_min - burn_min) // MINUTES_PER_HOUR
    hourly = np.full((n_out, N_HOURLY), np.nan)
    hourly[:, H_VOLUME] = 0.0
    hourly[:, H_LIQ_L] = 0.0
    hourly[:, H_LIQ_S] = 0.0
    hourly[:, H_TAKER] = 0.0
    ret = np.zeros(n_min)
    casc = np.zeros((MAX_CASCADES, N_CASCADE))
    n_casc = 0

    decay = 0.5 ** (1.0 / params[P_IMPACT_HL])
    recover = 0.5 ** (1.0 / (params[P_RECOVERY] * 60.0))
    perm = params[P_PERM]
    mc_zone = int(params[P_MC_ZONE] / BIN)
    mc_share = params[P_MC_RATE] / 60.0
    base_close = params[P_TURNOVER] / 1440.0
    base_sigma = params[P_VOL] * idio_vol / math.sqrt(60.0)
    leader = leader_ret.shape[0] > 0

    y = y0
    yf = y0
    x = 0.0
    log_vol = 0.0
    regime = 0
    crowd = 0.0
    prem_noise = 0.0
    thin = 1.0
    funding = params[P_INTEREST]
    prem_sum = 0.0
    prem_n = 0
    rebuild = params[P_REBUILD] / 1440.0
    y_day = np.full(24, y0)
    sigma = base_sigma
    depth_season = 1.0
    oi_target = oi_ref
    book_target = oi_ref * params[P_LEV_SHARE]
    patient = 0.0
    oi_patient = oi_ref * (1.0 - params[P_LEV_SHARE])
    shock_at = -1
    shock_move = 0.0
    # Open cascade episode.
    in_casc = False
    c_start = 0
    c_last = 0
    c_l = 0.0
    c_s = 0.0
    c_y0 = 0.0
    c_ymin = 0.0
    c_ymax = 0.0
    c_tiers = 0
    c_rounds = 0
    c_bands = 0
    c_oi = 0.0
    y_end = y0
    # Pending: what happened since the last active minute of the open cascade.
    p_l = 0.0
    p_s = 0.0
    p_ymin = y0
    p_ymax = y0
    p_tiers = 0
    p_rounds = 0
    p_bands = 0
    h = 0

    for m in range(n_min):
        if m % MINUTES_PER_HOUR == 0:
            h = m // MINUTES_PER_HOUR
            # Volatility regime: calm -> compression -> break -> calm.
            u = u_regime[h]
            broke = False
            if regime == 0 and u < params[P_COMP_RATE] / 24.0:
                regime = 1
            elif regime == 1 and u < 1.0 / (params[P_COMP_DAYS] * 24.0):
                regime = 2
                broke = True
            elif regime == 2 and u < 1.0 / (params[P_BREAK_DAYS] * 24.0):
                regime = 0
            log_vol = params[P_VOL_PERS] * log_vol + params[P_VOL_VOL] * eps_vol[h]
            mult = 1.0
            if regime == 1:
                mult = params[P_COMP_VOL]
            elif regime == 2:
                mult = params[P_BREAK_VOL]
            depth_season, vol_season = _season(
                (start_minute_of_week + m) % (7 * 1440), params[P_NIGHT], params[P_WEEKEND]
            )
            sigma = base_sigma * mult * math.exp(log_vol) * vol_season
            # News: a compression always ends with one; otherwise Poisson arrivals.
            shock_at = -1
            if broke or u_shock[h] < params[P_SHOCK_RATE] / 24.0:
                shock_at = m + shock_minute[h]
                shock_move = shock_size[h] * (2.0 if broke else 1.0)
            # Crowding: persistent noise plus trend chasing on the last 24 h.
            mom = y - y_day[h % 24]
            y_day[h % 24] = y
            crowd = params[P_CROWD_PERS] * crowd + params[P_CROWD_NOISE] * eps_crowd[h]
            crowd += params[P_TREND] * mom / 24.0
            crowd = min(max(crowd, -2.5), 2.5)
            # Premium noise is slow (basis trades), sd premium_noise, hourly AR 0.99.
            prem_noise = 0.99 * prem_noise + params[P_PREM_NOISE] * 0.141 * eps_prem[h]
            patient = 0.99 * patient + params[P_PATIENT_VOL] * eps_oi[h]
            build = params[P_COMP_OI] if regime == 1 else 0.0
            oi_target = oi_ref * math.exp(y - y0)
            book_target = oi_target * params[P_LEV_SHARE] * (1.0 + build)
            oi_patient = oi_target * (1.0 - params[P_LEV_SHARE]) * math.exp(patient)

        # Exogenous move: own noise, the leader's last minute, news.
        r = sigma * eps_min[m]
        if leader:
            r += beta * leader_ret[m - 1] if m > 0 else 0.0
        if m == shock_at:
            r += shock_move
            thin *= 0.5
        y_prev = y
        yf += r
        x *= decay
        y = yf + x
        y_exo = y

        # Liquidations walk the book; their impact may cross the next band.
        depth = params[P_DEPTH] * oi_target * depth_season * thin
        mc_l, mc_s = margin_calls(hist, st, ptr, y, mc_zone, mc_share)
        y += book_impact(mc_s - mc_l, depth)
        y_new, liq_l, liq_s, rounds, tiers, bands = resolve(hist, st, ptr, y, depth)
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

        # Voluntary closes (payers of funding close more) and new opens near the price.
        over = params[P_FUND_CLOSE] / 0.0001
        close_share(hist, st, LONG, min(base_close * (1.0 + over * max(funding, 0.0)), 0.5))
        close_share(hist, st, SHORT, min(base_close * (1.0 + over * max(-funding, 0.0)), 0.5))
        oi_l = open_interest(st, LONG)
        oi_s = open_interest(st, SHORT)
        flow = base_close * book_target + rebuild * max(book_target - oi_l - oi_s, 0.0)
        share_long = 1.0 / (1.0 + math.exp(-crowd))
        for t in range(n_tiers):
            w = tier_weights[t] * flow
            if w > 0.0:
                open_position(hist, st, ptr, LONG, t, y, long_off[t], w * share_long)
                open_position(hist, st, ptr, SHORT, t, y, short_off[t], w * (1.0 - share_long))
        oi_l = open_interest(st, LONG)
        oi_s = open_interest(st, SHORT)
        oi = oi_l + oi_s

        # Funding: premium from the crowded side, settled every 8 h, Binance's clamp.
        imbalance = (oi_l - oi_s) / oi if oi > 0.0 else 0.0
        oi_total = oi + oi_patient
        prem_sum += params[P_PREMIUM] * imbalance + prem_noise
        prem_n += 1
        if (m + 1) % FUNDING_MINUTES == 0:
            avg = prem_sum / prem_n
            rate = avg + min(
                max(params[P_INTEREST] - avg, -params[P_INTEREST_CLAMP]), params[P_INTEREST_CLAMP]
            )
            funding = min(max(rate, -params[P_FUND_CLAMP]), params[P_FUND_CLAMP])
            st[OFFSET] += funding  # payers lose margin, receivers gain it: all liq prices shift
            prem_sum = 0.0
            prem_n = 0

        ret[m] = y - y_prev
        move = abs(y - y_prev) / base_sigma
        volume = oi_target * 0.0016 * (0.4 + 0.6 * move) + liq
        tilt = min(max((y - y_prev) / (4.0 * base_sigma), -0.6), 0.6)
        taker = (volume - liq) * 0.5 * (1.0 + tilt) + liq_s  # liquidated shorts buy

        if m >= burn_min:
            o = (m - burn_min) // MINUTES_PER_HOUR
            if (m - burn_min) % MINUTES_PER_HOUR == 0:
                hourly[o, H_OPEN] = y_prev
                hourly[o, H_HIGH] = y_prev
                hourly[o, H_LOW] = y_prev
            hi = max(y_exo, y)
            lo = min(y_exo, y)
            hourly[o, H_HIGH] = max(hourly[o, H_HIGH], hi)
            hourly[o, H_LOW] = min(hourly[o, H_LOW], lo)
            hourly[o, H_CLOSE] = y
            hourly[o, H_VOLUME] += volume
            hourly[o, H_TAKER] += taker
            hourly[o, H_LIQ_L] += liq_l
            hourly[o, H_LIQ_S] += liq_s
            hourly[o, H_OI] = oi_total
            hourly[o, H_FUNDING] = funding
            hourly[o, H_LSR] = oi_l / oi_s if oi_s > 0.0 else np.nan

        # Cascade log: an episode of sustained liquidations; logged if big and self-feeding.
        if not in_casc and liq >= START_SHARE * oi_target:
            in_casc = True
            c_start = m
            c_l = 0.0
            c_s = 0.0
            c_y0 = y_prev
            c_ymin = y_prev
            c_ymax = y_prev
            c_tiers = 0
            c_rounds = 0
            c_bands = 0
            c_oi = oi_target
            c_last = m
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
                c_last = m
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
            if m - c_last > CASCADE_GAP_MIN or m == n_min - 1:
                in_casc = False
                if (
                    c_start >= burn_min
                    and c_l + c_s >= params[P_CASCADE_MIN] * c_oi
                    and c_rounds >= 2
                    and n_casc < MAX_CASCADES
                ):
                    row = casc[n_casc]
                    row[C_START] = c_start - burn_min
                    row[C_END] = c_last - burn_min
                    row[C_LIQ_L] = c_l
                    row[C_LIQ_S] = c_s
                    row[C_Y_START] = c_y0
                    row[C_Y_MIN] = c_ymin
                    row[C_Y_MAX] = c_ymax
                    row[C_Y_END] = y_end
                    row[C_TIERS] = c_tiers
                    row[C_ROUNDS] = c_rounds
                    row[C_BANDS] = c_bands
                    row[C_OI] = c_oi
                    n_casc += 1
                    # After a flush, traders come back at a speed of their own.
                    rebuild = params[P_REBUILD] / 1440.0 * math.exp(0.7 * rebuild_draw[h])
    return hourly, ret, casc[:n_casc], n_casc
