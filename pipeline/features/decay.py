"""Exponential time decay, as pure functions.

Everything that "fades" in recloop (category affinities, item popularity, co-occurrence) uses
the same half-life arithmetic, so a half-life setting means the same thing everywhere: after
one half-life an observation counts half as much as a fresh one.

>>> round(decay_factor(3_600_000, 3_600.0), 3)
0.5
>>> decayed(8.0, 0, 7_200_000, 3_600.0)
2.0
"""

from __future__ import annotations

import math

_MS = 1_000.0


def decay_factor(elapsed_ms: float, half_life_seconds: float) -> float:
    """Weight of an observation ``elapsed_ms`` old; never above 1 (clock skew is clamped)."""
    if elapsed_ms <= 0:
        return 1.0
    return math.exp2(-elapsed_ms / (half_life_seconds * _MS))


def decayed(value: float, value_ts: int, now_ts: int, half_life_seconds: float) -> float:
    """``value`` last updated at ``value_ts`` (ms), as seen at ``now_ts`` (ms)."""
    return value * decay_factor(now_ts - value_ts, half_life_seconds)


def growth_exponent(ts: int, landmark_ts: int, half_life_seconds: float) -> float:
    """Forward-decay exponent of an observation at ``ts`` relative to a landmark.

    Forward decay stores ``w * 2**exponent`` instead of decaying every stored value on every
    update: ratios between stored values are then exactly the decayed ratios, and a store can
    be updated with commutative increments (safe with several writers). Callers rescale when
    the exponent grows large (see ``rescale_needed``).
    """
    return (ts - landmark_ts) / (half_life_seconds * _MS)


def rescale_needed(exponent: float, limit: float = 400.0) -> bool:
    """True when forward-decayed weights approach float range and must be rebased."""
    return exponent > limit
