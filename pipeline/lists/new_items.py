"""A fair first chance for new and live items: the new-item slot of a list.

A video published a minute ago or a channel that just went live has no co-occurrence yet,
so beyond the small "fresh" pool it is rarely shown and the loop never learns about it.
``new_item_share`` of a list (``RECLOOP_NEW_ITEM_SHARE``, per experiment arm through
``ListParams``) is given to items that became available within ``new_item_window_ms``:
published then (``published_ts``), or gone live then (availability turned on,
``Catalog.live_since``). Among those the user may be shown, the slot takes first the ones
from a creator the user watched, then live channels, then by the user's taste (category
affinity) and trend velocity; each is labelled with its own reason: "live now", "new from a
creator you watch", "new in <category>".

>>> order_key(creator=True, live=False, affinity=0.0, trend=1.0) > order_key(False, True, 5.0, 9.0)
True
"""

from __future__ import annotations

import numpy as np

from pipeline.features.state import UserState
from pipeline.lists.diversity import Scored
from pipeline.model.arrays import FloatArray, IntArray
from pipeline.model.catalog import Catalog

LIVE_NOW = "live now"
NEW_FROM_CREATOR = "new from a creator you watch"


def new_in(categories: tuple[str, ...]) -> str:
    """The reason of a new item placed by the slot without a creator match.

    >>> new_in(("Comedy", "Family")), new_in(())
    ('new in Comedy', 'new this week')
    """
    return f"new in {categories[0]}" if categories else "new this week"


def order_key(
    creator: bool, live: bool, affinity: float, trend: float
) -> tuple[int, int, float, float]:
    """How the slot orders new items: creator watched, live, then taste, then trend."""
    return (int(creator), int(live), max(affinity, 0.0), trend)


def new_items(catalog: Catalog, cands: IntArray, now_ms: int, window_ms: int) -> IntArray:
    """The candidates that became available within ``window_ms`` of ``now_ms``."""
    if cands.shape[0] == 0:
        return cands
    since = np.maximum(catalog.published_ts[cands].astype(np.int64), catalog.live_since[cands])
    return cands[(since > now_ms - window_ms) & (since <= now_ms)]


def new_item_slot(
    catalog: Catalog,
    state: UserState,
    cands: IntArray,
    trend: FloatArray,
    *,
    taken: set[str],
    count: int,
    now_ms: int,
    window_ms: int,
) -> list[Scored]:
    """Up to ``count`` new items for the user, ordered and labelled (see module doc).

    ``cands`` obey exclusions, controls and availability already; ``trend`` is their trend
    score (same order); items in ``taken`` (already in the list) are skipped.
    """
    if count <= 0 or cands.shape[0] == 0:
        return []
    fresh = new_items(catalog, cands, now_ms, window_ms)
    if fresh.shape[0] == 0:
        return []
    trend_of = dict(zip(cands.tolist(), trend.tolist(), strict=True))
    watched = _creators_watched(catalog, state)
    affinity = state.affinity
    keyed = []
    for idx in fresh.tolist():
        item_id = catalog.ids[idx]
        if item_id in taken:
            continue
        creator = catalog.creators[idx]
        cats = catalog.categories_of(idx)
        liked = max((affinity.get(c, 0.0) for c in cats), default=0.0)
        live = bool(catalog.live_since[idx] > now_ms - window_ms)
        keyed.append((order_key(creator in watched, live, liked, trend_of[idx]), idx))
    keyed.sort(key=lambda pair: (pair[0], -pair[1]), reverse=True)
    out = []
    for _, idx in keyed[:count]:
        if catalog.live_since[idx] > now_ms - window_ms:
            reason = LIVE_NOW
        elif catalog.creators[idx] in watched:
            reason = NEW_FROM_CREATOR
        else:
            reason = new_in(catalog.categories_of(idx))
        out.append(Scored(catalog.ids[idx], 0.0, reason))
    return out


def _creators_watched(catalog: Catalog, state: UserState) -> set[str]:
    """Creators of the items of the user's positive history (known to the catalogue)."""
    out = set()
    for h in state.history:
        if h.weight <= 0:
            continue
        idx = catalog.get(h.item_id)
        creator = catalog.creators[idx] if idx is not None else None
        if creator:
            out.add(creator)
    return out
