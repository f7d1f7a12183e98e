"""Per-item statistics: popularity, trending (overall, per segment), skips, completion.

**Popularity** counts users, not events: one count the first time a user interacts with the
item (the record says whether it is the first), so a rating converted to a click plus a
watch counts once. By default it does not decay (``half_life_seconds`` 0): "how many people
chose this" needs no clock, and a wall-clock half-life tuned on one data set does not
transfer to another's time scale. **Trend** is the product's "trending now", decayed with
forward decay (see ``pipeline.features.decay``): an interaction at time ``t`` adds
``2 ** ((t - landmark) / half_life)``, rebased before it overflows, so increments commute
and updates merged from other workers give the same totals in any order.

Dense per-item vectors (sized to the catalogue's indices) hold popularity, overall trend and
the counts behind skip rate and completion. Trending per segment is not catalogue-sized: each
of at most ``max_segments`` segments keeps the heavy hitters of its items
(``pipeline.model.trending``). The largest popularity and trend are kept as running maxima
(between rescales a forward-decayed value only grows), so scaling a feature to its maximum
never scans the catalogue. Every change is appended to ``changes`` for the incremental
candidate indexes.

**Stage popularity**: per stage ``h`` (how many events a user had before, capped at
``stage_cap``), the heavy hitters of the items users chose as a positive at that stage: a
user at their ``h``-th event is offered what others chose at theirs (what people pick first
is not what they pick later). Positions in the user's own sequence, no clock.

Memory: 48 bytes per catalogue index + (``max_segments`` x ``segment_items`` + (``stage_cap``
+ 1) x ``stage_items``) x ~120 bytes.
"""

from __future__ import annotations

import numpy as np

from pipeline.features.decay import growth_exponent, rescale_needed
from pipeline.model.arrays import FloatArray, IntArray
from pipeline.model.changes import ChangeLog
from pipeline.model.trending import HeavyHitters

GLOBAL_SEGMENT = "global"
MAX_SEGMENTS = 256  # default bound: segment values come from client-supplied context
_VECTORS = ("popularity", "trend", "interactions", "skips", "watches", "completion_sum")


class ItemStats:
    """Decayed interaction mass per item and segment, plus quality ratios."""

    def __init__(
        self,
        half_life_seconds: float,
        trend_half_life_seconds: float,
        *,
        segment_items: int = 500,
        max_segments: int = MAX_SEGMENTS,
        stage_cap: int = 60,
        stage_items: int = 200,
    ) -> None:
        self.half_life = half_life_seconds
        self.trend_half_life = trend_half_life_seconds
        self.segment_items = segment_items
        self.max_segments = max_segments
        self.landmark_ts: int | None = None
        self.popularity = np.zeros(0, dtype=np.float64)  # long half-life, all segments
        self.trend = np.zeros(0, dtype=np.float64)  # trend half-life, all segments
        self.interactions = np.zeros(0, dtype=np.float64)  # plain counts (most-popular)
        self.skips = np.zeros(0, dtype=np.float64)
        self.watches = np.zeros(0, dtype=np.float64)
        self.completion_sum = np.zeros(0, dtype=np.float64)
        self.segments: dict[str, HeavyHitters] = {}  # besides the global segment
        self.stage_cap = stage_cap
        self.stages = [HeavyHitters(stage_items) for _ in range(stage_cap + 1)]
        self.popularity_max = 0.0
        self.trend_max = 0.0
        self.changes = ChangeLog()

    def observe(
        self,
        item: int,
        ts: int,
        *,
        kind: str,
        completion: float | None,
        segments: tuple[str, ...] = (),
        first: bool = True,
        stage: int | None = None,
    ) -> None:
        """Count one interaction of type ``kind`` with the item at index ``item``.

        ``first``: the user's first interaction with the item (popularity counts users);
        ``stage``: a positive by a user who had ``stage`` events before (``None``: not one).
        """
        if item >= self.popularity.shape[0]:
            self._fit(item + 1)
        if self.landmark_ts is None:
            self.landmark_ts = ts
        self._maybe_rescale(ts)
        self.interactions[item] += 1.0
        if first:
            pop = self.popularity[item] + self._mass(ts, self.half_life)
            self.popularity[item] = pop
            self.popularity_max = max(self.popularity_max, pop)
        trend_mass = self._mass(ts, self.trend_half_life)
        trend = self.trend[item] + trend_mass
        self.trend[item] = trend
        self.trend_max = max(self.trend_max, trend)
        for segment in segments:
            hitters = self.segments.get(segment)
            if hitters is None:
                if len(self.segments) + 1 >= self.max_segments:  # the global one counts
                    continue
                hitters = self.segments[segment] = HeavyHitters(self.segment_items)
            hitters.add(item, trend_mass)
        if stage is not None:
            self.stages[min(stage, self.stage_cap)].add(item, 1.0)
        if kind == "skip":
            self.skips[item] += 1.0
        elif kind == "watch":
            self.watches[item] += 1.0
            self.completion_sum[item] += completion or 0.0
        self.changes.append(item)

    def has_segment(self, segment: str) -> bool:
        """Whether ``segment`` has trending of its own (the global one always has)."""
        return segment == GLOBAL_SEGMENT or segment in self.segments

    def segment_names(self) -> list[str]:
        """Every segment with trending, the global one first."""
        return [GLOBAL_SEGMENT, *self.segments]

    def popularity_of(self, items: IntArray) -> FloatArray:
        """Decayed long-term popularity of ``items``."""
        return _take(self.popularity, items)

    def trend_of(self, segment: str, items: IntArray) -> FloatArray:
        """Decayed trend mass of ``items`` in a segment (the global one when it has none)."""
        hitters = self.segments.get(segment)
        return _take(self.trend, items) if hitters is None else hitters.values(items)

    def at(self, vector: str, item: int) -> float:
        """One item's value of a per-item vector (``"popularity"``, ``"skips"``, ...)."""
        arr: FloatArray = getattr(self, vector)
        return float(arr[item]) if item < arr.shape[0] else 0.0

    def trend_at(self, segment: str, item: int) -> float:
        """``trend_of`` for one item."""
        hitters = self.segments.get(segment)
        return self.at("trend", item) if hitters is None else hitters.value(item)

    def trend_top(self, segment: str) -> float:
        """The largest trend mass in a segment (the global one when it has none)."""
        hitters = self.segments.get(segment)
        return self.trend_max if hitters is None else hitters.max()

    def stage_hitters(self, stage: int) -> HeavyHitters:
        """The positives chosen by users at their ``stage``-th event (capped)."""
        return self.stages[min(max(stage, 0), self.stage_cap)]

    def skip_rate(self, items: IntArray) -> FloatArray:
        """Smoothed share of interactions that were skips (prior: 1 skip in 10)."""
        inter = _take(self.interactions, items)
        return (_take(self.skips, items) + 1.0) / (inter + 10.0)

    def mean_completion(self, items: IntArray) -> FloatArray:
        """Smoothed mean watch completion (prior: 0.5 over 2 watches)."""
        return (_take(self.completion_sum, items) + 1.0) / (_take(self.watches, items) + 2.0)

    def evict(self, items: IntArray) -> None:
        """Forget evicted catalogue indices (their numbers and trending entries)."""
        inside = items[items < self.popularity.shape[0]]
        stale_max = bool(inside.shape[0]) and (
            self.popularity[inside].max() >= self.popularity_max
            or self.trend[inside].max() >= self.trend_max
        )
        for name in _VECTORS:
            getattr(self, name)[inside] = 0.0
        for hitters in (*self.segments.values(), *self.stages):
            hitters.remove(items)
        if stale_max:  # rare: the running maxima were evicted, find the new ones
            self.popularity_max = float(self.popularity.max(initial=0.0))
            self.trend_max = float(self.trend.max(initial=0.0))

    def nbytes(self) -> int:
        """Bytes of the arrays (heavy hitters' dicts come on top)."""
        dense = sum(int(getattr(self, name).nbytes) for name in _VECTORS)
        return dense + sum(h.nbytes() for h in (*self.segments.values(), *self.stages))

    def reserve(self, size: int) -> None:
        """Make room for item indices below ``size`` (the catalogue's capacity)."""
        if size > self.popularity.shape[0]:
            self._fit(size)

    def _fit(self, size: int) -> None:
        grown = max(size, 2 * self.popularity.shape[0])
        for name in _VECTORS:
            arr = getattr(self, name)
            out = np.zeros(grown, dtype=np.float64)
            out[: arr.shape[0]] = arr
            setattr(self, name, out)

    def _mass(self, ts: int, half_life: float) -> float:
        """Forward-decay mass of an observation at ``ts`` (1 without a half-life)."""
        if half_life <= 0:
            return 1.0
        assert self.landmark_ts is not None
        return float(2.0 ** growth_exponent(ts, self.landmark_ts, half_life))

    def _maybe_rescale(self, ts: int) -> None:
        assert self.landmark_ts is not None
        decaying = [h for h in (self.half_life, self.trend_half_life) if h > 0]
        if not decaying or not rescale_needed(growth_exponent(ts, self.landmark_ts, min(decaying))):
            return
        if self.half_life > 0:
            factor = 2.0 ** -growth_exponent(ts, self.landmark_ts, self.half_life)
            self.popularity *= factor
            self.popularity_max *= factor
        trend_factor = (
            2.0 ** -growth_exponent(ts, self.landmark_ts, self.trend_half_life)
            if self.trend_half_life > 0
            else 1.0
        )
        self.trend *= trend_factor
        self.trend_max *= trend_factor
        for hitters in self.segments.values():
            hitters.scale(trend_factor)
        self.landmark_ts = ts


def _take(arr: FloatArray, items: IntArray) -> FloatArray:
    """``arr[items]`` treating indices past the end as zero (items never interacted with).

    The shared models keep the vectors as long as the catalogue (``reserve``): the plain
    lookup is the rule, the zero-filling one the exception.
    """
    try:
        taken: FloatArray = arr[items]
    except IndexError:
        pass
    else:
        return taken
    out = np.zeros(items.shape[0], dtype=np.float64)
    inside = items < arr.shape[0]
    out[inside] = arr[items[inside]]
    return out
