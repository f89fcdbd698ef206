"""Laplace noise for published telemetry counts (differential privacy).

A count to which one reporter can add at most ``sensitivity`` gets noise
drawn from Laplace(0, sensitivity / epsilon): whether or not any one
reporter took part then changes the chance of any published value by at
most a factor e^epsilon. Production draws from the operating system's
CSPRNG (``random.SystemRandom``), so the noise cannot be predicted or
replayed; tests pass a seeded ``random.Random``.
"""

from __future__ import annotations

import math
import random


def laplace(rng: random.Random, scale: float) -> float:
    """One draw from Laplace(0, ``scale``): the difference of two exponentials."""
    if scale <= 0:
        return 0.0
    return scale * (rng.expovariate(1.0) - rng.expovariate(1.0))


def noise_scale(sensitivity: float, epsilon: float) -> float:
    """Laplace scale for ``sensitivity`` at ``epsilon``; 0 (no noise) when epsilon is inf."""
    if math.isinf(epsilon):
        return 0.0
    return sensitivity / epsilon


def noisy_count(rng: random.Random, count: int, scale: float) -> int:
    """``count`` plus Laplace noise, rounded and clamped at 0 (what gets published)."""
    return max(0, round(count + laplace(rng, scale)))


__all__ = ["laplace", "noise_scale", "noisy_count"]
