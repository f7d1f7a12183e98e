"""Where a list's candidates come from, and which of them a user may be shown at all.

Pools besides co-occurrence (trending per segment, trending per category, the newest items,
a fallback for an empty catalogue) are indexes over the shared models: ``CandidateIndex``
recomputes them on a timer (workers) or every few hundred events (replay), because trending
moves on a scale of minutes and recomputing it per list would be wasted work.
"""

from __future__ import annotations

import numpy as np

from pipeline.features.state import UserState
from pipeline.lists.scoring import top
from pipeline.model.arrays import IntArray
from pipeline.model.catalog import Catalog
from pipeline.model.item_stats import GLOBAL_SEGMENT
from pipeline.model.models import SharedModels

_EMPTY: IntArray = np.zeros(0, dtype=np.int64)


class CandidateIndex:
    """Trending per segment and per category, the newest items, a fallback (item indices)."""

    def __init__(self, *, trending: int = 100, per_category: int = 30, fresh: int = 30) -> None:
        self.sizes = (trending, per_category, fresh)
        self.trending_by_segment: dict[str, IntArray] = {}
        self.by_category: dict[int, IntArray] = {}
        self.fresh: IntArray = _EMPTY
        self.fallback: IntArray = _EMPTY

    def refresh(self, models: SharedModels, now_ts: int) -> None:
        """Recompute every pool from the models as they are now."""
        trending, per_category, fresh = self.sizes
        catalog, stats = models.catalog, models.stats
        n = len(catalog)
        self.trending_by_segment = {seg: top(arr[:n], trending) for seg, arr in stats.trend.items()}
        glob = stats.trending(GLOBAL_SEGMENT)
        glob = np.pad(glob, (0, max(0, n - glob.shape[0])))[:n]
        membership = catalog.membership[:n]
        self.by_category = {
            c: top(np.where(membership[:, c] > 0, glob + 1e-12, 0.0), per_category)
            for c in range(len(catalog.category_names))
        }
        published = catalog.published_ts[:n]
        newest = top(np.where(published <= now_ts, published, 0.0), fresh)
        self.fresh = newest[published[newest] > 0]
        # last resort for an empty or brand-new catalogue: never an empty list
        self.fallback = np.arange(min(n, trending), dtype=np.int64)

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


def allowed(catalog: Catalog, state: UserState, cands: IntArray) -> IntArray:
    """Drop items the user interacted with and everything their controls forbid."""
    ids = catalog.ids
    excluded = state.excluded
    if excluded:
        if len(excluded) <= cands.shape[0]:  # look up the fewer ids of the two
            index = catalog.get
            drop = [i for i in map(index, excluded) if i is not None]
            cands = cands[~np.isin(cands, drop)]
        else:
            cands = cands[[ids[i] not in excluded for i in cands.tolist()]]
    controls = state.controls
    if not controls.empty and cands.shape[0]:
        infos = catalog.infos
        keep = [
            controls.allows(ids[i], infos[i].categories, infos[i].creator_id)
            for i in cands.tolist()
        ]
        cands = cands[keep]
    return cands
