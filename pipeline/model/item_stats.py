"""Per-item statistics: decayed popularity (overall and per segment), skip rate, completion.

Popularity uses forward decay (see ``pipeline.features.decay``): an interaction at time ``t`` adds
``2 ** ((t - landmark) / half_life)``, so increments commute and updates merged from other
workers give the same totals in any order. Ratios between items are the decayed ratios.
"""

from __future__ import annotations

import numpy as np

from pipeline.features.decay import growth_exponent, rescale_needed
from pipeline.model.arrays import FloatArray, fit

GLOBAL_SEGMENT = "global"
MAX_SEGMENTS = 256  # bounded: segment values come from client-supplied context


class ItemStats:
    """Decayed interaction mass per item and segment, plus quality ratios."""

    def __init__(self, half_life_seconds: float, trend_half_life_seconds: float) -> None:
        self.half_life = half_life_seconds
        self.trend_half_life = trend_half_life_seconds
        self.landmark_ts: int | None = None
        self.popularity = np.zeros(0, dtype=np.float64)  # long half-life, all segments
        self.trend: dict[str, FloatArray] = {GLOBAL_SEGMENT: np.zeros(0, dtype=np.float64)}
        self.interactions = np.zeros(0, dtype=np.float64)  # plain counts (most-popular)
        self.skips = np.zeros(0, dtype=np.float64)
        self.watches = np.zeros(0, dtype=np.float64)
        self.completion_sum = np.zeros(0, dtype=np.float64)

    def observe(
        self,
        item: int,
        ts: int,
        *,
        kind: str,
        completion: float | None,
        segments: tuple[str, ...] = (),
    ) -> None:
        """Count one interaction of type ``kind`` with the item at index ``item``."""
        size = item + 1
        self.popularity = fit(self.popularity, size)
        self.interactions = fit(self.interactions, size)
        self.skips = fit(self.skips, size)
        self.watches = fit(self.watches, size)
        self.completion_sum = fit(self.completion_sum, size)
        if self.landmark_ts is None:
            self.landmark_ts = ts
        self._maybe_rescale(ts)
        self.interactions[item] += 1.0
        self.popularity[item] += 2.0 ** growth_exponent(ts, self.landmark_ts, self.half_life)
        trend_mass = 2.0 ** growth_exponent(ts, self.landmark_ts, self.trend_half_life)
        for segment in (GLOBAL_SEGMENT, *segments):
            arr = self.trend.get(segment)
            if arr is None:
                if len(self.trend) >= MAX_SEGMENTS:
                    continue
                arr = np.zeros(0, dtype=np.float64)
            arr = fit(arr, size)
            arr[item] += trend_mass
            self.trend[segment] = arr
        if kind == "skip":
            self.skips[item] += 1.0
        elif kind == "watch":
            self.watches[item] += 1.0
            self.completion_sum[item] += completion or 0.0

    def skip_rate(self, items: np.ndarray) -> FloatArray:
        """Smoothed share of interactions that were skips (prior: 1 skip in 10)."""
        inter = _take(self.interactions, items)
        return (_take(self.skips, items) + 1.0) / (inter + 10.0)

    def mean_completion(self, items: np.ndarray) -> FloatArray:
        """Smoothed mean watch completion (prior: 0.5 over 2 watches)."""
        return (_take(self.completion_sum, items) + 1.0) / (_take(self.watches, items) + 2.0)

    def trending(self, segment: str = GLOBAL_SEGMENT) -> FloatArray:
        """Decayed trend mass per item in a segment (falls back to global)."""
        arr = self.trend.get(segment)
        return arr if arr is not None else self.trend[GLOBAL_SEGMENT]

    def _maybe_rescale(self, ts: int) -> None:
        assert self.landmark_ts is not None
        shortest = min(self.half_life, self.trend_half_life)
        if not rescale_needed(growth_exponent(ts, self.landmark_ts, shortest)):
            return
        for name, half in (("popularity", self.half_life),):
            arr = getattr(self, name)
            arr *= 2.0 ** -growth_exponent(ts, self.landmark_ts, half)
        for arr in self.trend.values():
            arr *= 2.0 ** -growth_exponent(ts, self.landmark_ts, self.trend_half_life)
        self.landmark_ts = ts


def _take(arr: FloatArray, items: np.ndarray) -> FloatArray:
    """``arr[items]`` treating indices past the end as zero (items never interacted with)."""
    out = np.zeros(items.shape[0], dtype=np.float64)
    inside = items < arr.shape[0]
    out[inside] = arr[items[inside]]
    return out
