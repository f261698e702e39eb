"""Pre-drawn randomness for one symbol, from NumPy's PCG64: the engine only does arithmetic.

Each symbol gets its own stream, seeded by (seed, CRC32 of the symbol), so a symbol's noise does
not change when others are added and the draws are the same on every platform.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Drivers:
    eps_min: np.ndarray
    eps_vol: np.ndarray
    u_regime: np.ndarray
    u_shock: np.ndarray
    shock_size: np.ndarray
    shock_minute: np.ndarray
    eps_crowd: np.ndarray
    eps_prem: np.ndarray
    eps_oi: np.ndarray
    rebuild_draw: np.ndarray

    def arrays(self) -> tuple[np.ndarray, ...]:
        """In the order `engine.run_symbol` takes them."""
        return (
            self.eps_min,
            self.eps_vol,
            self.u_regime,
            self.u_shock,
            self.shock_size,
            self.shock_minute,
            self.eps_crowd,
            self.eps_prem,
            self.eps_oi,
            self.rebuild_draw,
        )


def draw(seed: int, symbol: str, minutes: int, shock_scale: float) -> Drivers:
    """All random inputs for `minutes` one-minute steps of `symbol`."""
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(symbol.encode())]))
    )
    hours = -(-minutes // 60)
    return Drivers(
        eps_min=rng.standard_normal(minutes),
        eps_vol=rng.standard_normal(hours),
        u_regime=rng.random(hours),
        u_shock=rng.random(hours),
        # News moves are fat-tailed and either way.
        shock_size=rng.laplace(0.0, shock_scale, hours),
        shock_minute=rng.integers(0, 60, hours),
        eps_crowd=rng.standard_normal(hours),
        eps_prem=rng.standard_normal(hours),
        eps_oi=rng.standard_normal(hours),
        rebuild_draw=rng.standard_normal(hours),
    )
