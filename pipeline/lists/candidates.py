"""Where a list's candidates come from, and which of them a user may be shown at all.

Pools besides co-occurrence (trending per segment, trending per category, the newest items,
a fallback for an empty catalogue) are indexes over the shared models. ``CandidateIndex``
keeps them on a timer (workers) or every few hundred events (replay), because trending
moves on a scale of minutes and recomputing it per list would be wasted work.

A refresh costs ``O(items changed since the previous refresh)``, not ``O(catalogue)``: it
reads the items whose statistics or metadata changed from the models' change logs
(``pipeline.model.changes``) and updates exact top lists (``pipeline.lists.ranking``). It
scans the catalogue only to start (or after falling more than a change log behind, or
after an eviction left a pool short). Segment trending comes from the segments' heavy
hitters, re-ranked only when they changed.
"""

from __future__ import annotations

import heapq

import numpy as np

from pipeline.features.state import UserState
from pipeline.lists.ranking import Score, TopK
from pipeline.model.arrays import BoolArray, FloatArray, IntArray, isin_sorted, sorted_unique
from pipeline.model.catalog import Catalog
from pipeline.model.item_stats import GLOBAL_SEGMENT
from pipeline.model.models import SharedModels

_EMPTY: IntArray = np.zeros(0, dtype=np.int64)
_SLACK = 2  # pools keep this many times the places they serve, so evictions rarely rebuild


class CandidateIndex:
    """Trending per segment and per category, the newest items, a fallback (item indices)."""

    def __init__(self, *, trending: int = 100, per_category: int = 30, fresh: int = 30) -> None:
        self.sizes = (trending, per_category, fresh)
        self.trending_by_segment: dict[str, IntArray] = {}
        self.by_category: dict[int, IntArray] = {}
        self.fresh: IntArray = _EMPTY
        self.fallback: IntArray = _EMPTY
        self.rebuilds = 0
        self._models: SharedModels | None = None
        self._global = TopK(_SLACK * trending)
        self._categories: list[TopK] = []
        self._fresh = TopK(_SLACK * fresh)
        self._future: list[tuple[float, int]] = []  # (published, index) not yet published
        self._read = (0, 0, 0)  # positions in the change logs (counted, updated, evicted)
        self._now = 0
        self._versions: dict[str, int] = {}

    def refresh(self, models: SharedModels, now_ts: int) -> None:
        """Bring every pool up to date with the models as they are now."""
        stats, catalog = models.stats, models.catalog
        logs = (stats.changes, catalog.changes, catalog.evictions)
        news = [log.since(at) for log, at in zip(logs, self._read, strict=True)]
        if models is not self._models or now_ts < self._now or any(n is None for n in news):
            self._rebuild(models, now_ts)
        else:
            counted, updated, evicted = (sorted_unique(n) for n in news if n is not None)
            self._update(models, counted, updated, evicted, now_ts)
        self._read = (logs[0].position, logs[1].position, logs[2].position)
        self._now = now_ts
        self._publish(models)

    def trending_for(self, segment: str) -> IntArray:
        """Trending item indices of a segment (global when the segment has none)."""
        found = self.trending_by_segment.get(segment)
        if found is None:
            found = self.trending_by_segment.get(GLOBAL_SEGMENT, _EMPTY)
        return found

    def trending(
        self, catalog: Catalog, segment: str = GLOBAL_SEGMENT, n: int | None = None
    ) -> list[str]:
        """Item ids trending in a segment (global when the segment is unknown)."""
        found = self.trending_by_segment.get(segment, self.trending_by_segment.get(GLOBAL_SEGMENT))
        if found is None:
            return []
        return [catalog.item_id(int(i)) for i in found[: n or len(found)]]

    # ------------------------------------------------------------------ internals
    def _rebuild(self, models: SharedModels, now_ts: int) -> None:
        """Start over from a scan of the catalogue (first refresh, or fell behind)."""
        catalog = models.catalog
        self._models = models
        self.rebuilds += 1
        live = np.flatnonzero(catalog.live[: catalog.slots])
        self._rebuild_global(models, live, now_ts)
        self._categories = [TopK(_SLACK * self.sizes[1]) for _ in catalog.category_names]
        for c in range(len(self._categories)):
            self._rebuild_category(models, c, now_ts)
        published = catalog.published_ts[live]
        due = (published > 0) & (published <= now_ts)
        self._fresh.rebuild(live[due], published[due])
        later = published > now_ts
        self._future = list(zip(published[later].tolist(), live[later].tolist(), strict=True))
        heapq.heapify(self._future)
        self._versions = {}

    def _rebuild_global(self, models: SharedModels, live: IntArray, now_ts: int) -> None:
        trend, ok = _trend_score(models, now_ts)(live)
        self._global.rebuild(live[ok], trend[ok])

    def _rebuild_category(self, models: SharedModels, c: int, now_ts: int) -> None:
        members = models.catalog.members(c)
        members = members[models.catalog.available_at(members, now_ts)]
        self._categories[c].rebuild(members, models.stats.trend_of(GLOBAL_SEGMENT, members))

    def _update(
        self,
        models: SharedModels,
        counted: IntArray,
        updated: IntArray,
        evicted: IntArray,
        now_ts: int,
    ) -> None:
        """Apply what changed since the previous refresh (see ``pipeline.lists.ranking``).

        ``counted``: items whose statistics grew; ``updated``: items registered, evicted or
        whose categories or publication time changed; ``evicted``: items evicted (their
        trend fell to zero, their index may hold another item by now).
        """
        catalog = models.catalog
        changed = np.union1d(counted, updated)
        self._global.remove(evicted)
        self._global.merge(changed, _trend_score(models, now_ts))
        if not self._global.complete and self._global.items.shape[0] < self.sizes[0]:
            self._rebuild_global(models, np.flatnonzero(catalog.live[: catalog.slots]), now_ts)
        while len(self._categories) < len(catalog.category_names):  # new: all members changed
            self._categories.append(TopK(_SLACK * self.sizes[1]))
        cats = catalog.cats[changed]
        touched = set(np.unique(cats[cats >= 0]).tolist())  # categories of changed items
        if updated.shape[0]:
            touched.update(c for c, top in enumerate(self._categories) if top.remove(updated))
        for c in sorted(touched):
            top = self._categories[c]
            top.merge(changed[(cats == c).any(axis=1)], _member_score(models, c, now_ts))
            if not top.complete and top.items.shape[0] < self.sizes[1]:
                self._rebuild_category(models, c, now_ts)
        self._fresh.remove(updated)
        published = catalog.published_ts[updated]
        for ts, idx in zip(published.tolist(), updated.tolist(), strict=True):
            if ts > now_ts:
                heapq.heappush(self._future, (ts, idx))
        due = np.array([idx for _, idx in self._pop_due(catalog, now_ts)], dtype=np.int64)
        self._fresh.merge(np.union1d(updated, due), _fresh_score(models, now_ts))
        if not self._fresh.complete and self._fresh.items.shape[0] < self.sizes[2]:
            self._rebuild(models, now_ts)
        elif len(self._future) > 2 * len(catalog) + 1_024:  # stale entries: start over
            self._rebuild(models, now_ts)

    def _pop_due(self, catalog: Catalog, now_ts: int) -> list[tuple[float, int]]:
        out = []
        while self._future and self._future[0][0] <= now_ts:
            ts, idx = heapq.heappop(self._future)
            if catalog.live[idx] and catalog.published_ts[idx] == ts:  # else updated since
                out.append((ts, idx))
        return out

    def _publish(self, models: SharedModels) -> None:
        trending, per_category, fresh = self.sizes
        stats, catalog = models.stats, models.catalog
        by_segment = {GLOBAL_SEGMENT: self._global.items[:trending]}
        for name, hitters in stats.segments.items():
            old = self.trending_by_segment.get(name)
            if old is None or self._versions.get(name) != hitters.version:
                old = hitters.top(trending)
                self._versions[name] = hitters.version
            by_segment[name] = old
        self.trending_by_segment = by_segment
        self.by_category = {c: top.items[:per_category] for c, top in enumerate(self._categories)}
        self.fresh = self._fresh.items[:fresh]
        # last resort for an empty or brand-new catalogue: never an empty list
        fallback = catalog.live_indices(2 * trending)
        self.fallback = fallback[catalog.available_at(fallback, self._now)][:trending]


def _eligible(models: SharedModels, items: IntArray, now_ts: int) -> BoolArray:
    """Live (not evicted) and available at ``now_ts`` (item v1.1 availability)."""
    catalog = models.catalog
    return catalog.live[items] & catalog.available_at(items, now_ts)


def _trend_score(models: SharedModels, now_ts: int) -> Score:
    """Overall trend; eligible: available items that have one."""

    def score(items: IntArray) -> tuple[FloatArray, BoolArray]:
        trend = models.stats.trend_of(GLOBAL_SEGMENT, items)
        return trend, (trend > 0) & _eligible(models, items, now_ts)

    return score


def _member_score(models: SharedModels, c: int, now_ts: int) -> Score:
    """Overall trend; eligible: the available members of category ``c`` (trend or not)."""

    def score(items: IntArray) -> tuple[FloatArray, BoolArray]:
        member = (models.catalog.cats[items] == c).any(axis=1) & _eligible(models, items, now_ts)
        return models.stats.trend_of(GLOBAL_SEGMENT, items), member

    return score


def _fresh_score(models: SharedModels, now_ts: int) -> Score:
    """Publication time; eligible: live items published by ``now_ts``."""

    def score(items: IntArray) -> tuple[FloatArray, BoolArray]:
        published = models.catalog.published_ts[items]
        ok = (published > 0) & (published <= now_ts) & _eligible(models, items, now_ts)
        return published, ok

    return score


def allowed(
    catalog: Catalog, state: UserState, cands: IntArray, now_ts: int | None = None
) -> IntArray:
    """Drop items the user interacted with and everything their controls forbid."""
    ids = catalog.ids
    if now_ts is not None and cands.shape[0]:  # withdrawn or out of their window
        cands = cands[catalog.available_at(cands, now_ts)]
    excluded = state.excluded
    if excluded:
        if len(excluded) <= cands.shape[0]:  # look up the fewer ids of the two
            index = catalog.get
            drop = np.fromiter((i for i in map(index, excluded) if i is not None), np.int64)
            drop.sort()
            cands = cands[~isin_sorted(cands, drop)]
        else:
            cands = cands[[ids[i] not in excluded for i in cands.tolist()]]
    controls = state.controls
    if not controls.empty and cands.shape[0]:
        cats, creators = catalog.category_tuples, catalog.creators
        keep = [controls.allows(ids[i], cats[i], creators[i]) for i in cands.tolist()]
        cands = cands[keep]
    return cands
