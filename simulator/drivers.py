"""Pre-drawn randomness for one symbol, from NumPy's PCG64: the engine only does arithmetic.

Each symbol gets its own stream, seeded by (seed, CRC32 of the symbol), so a symbol's noise does
not change when others are added and the draws are the same on every platform. Continuations
from a saved state take a stream of their own, keyed by more integers (e.g. start hour and
path number), so fresh futures never reuse the market's own draws.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields

import numpy as np

from flushcast.simulator.engine import MINUTES_PER_HOUR


@dataclass(frozen=True)
class Drivers:
    """Random inputs of whole hours: `eps_min` per minute, the rest per hour."""

    eps_min: np.ndarray
    eps_vol: np.ndarray
    u_regime: np.ndarray
    u_shock: np.ndarray
    e_shock: np.ndarray
    u_dir: np.ndarray
    shock_minute: np.ndarray
    eps_crowd: np.ndarray
    eps_prem: np.ndarray
    eps_oi: np.ndarray
    rebuild_draw: np.ndarray
    eps_bg: np.ndarray

    @property
    def hours(self) -> int:
        return self.eps_vol.shape[0]

    def arrays(self) -> tuple[np.ndarray, ...]:
        """In the order `engine.run` takes them."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def window(self, start_hour: int, end_hour: int) -> Drivers:
        """The draws of hours [start_hour, end_hour) (views, no copy)."""
        m0, m1 = start_hour * MINUTES_PER_HOUR, end_hour * MINUTES_PER_HOUR
        return Drivers(
            self.eps_min[m0:m1],
            *(getattr(self, f.name)[start_hour:end_hour] for f in fields(self)[1:]),
        )


def draw(seed: int, symbol: str, hours: int, *key: int) -> Drivers:
    """All random inputs for `hours` hours of `symbol`; `key` selects a separate stream."""
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(symbol.encode()), *key]))
    )
    return Drivers(
        eps_min=rng.standard_normal(hours * MINUTES_PER_HOUR),
        eps_vol=rng.standard_normal(hours),
        u_regime=rng.random(hours),
        u_shock=rng.random(hours),
        # News moves are fat-tailed: exponential magnitudes, the engine sets scale and side.
        e_shock=rng.standard_exponential(hours),
        u_dir=rng.random(hours),
        shock_minute=rng.integers(0, 60, hours),
        eps_crowd=rng.standard_normal(hours),
        eps_prem=rng.standard_normal(hours),
        eps_oi=rng.standard_normal(hours),
        rebuild_draw=rng.standard_normal(hours),
        eps_bg=rng.standard_normal(hours),
    )
