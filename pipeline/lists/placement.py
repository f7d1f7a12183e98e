"""Why an item is on a user's list, in the user's terms: the signal that placed it.

``Recommender`` knows, per listed item, its strongest weighted feature and the recent
positive behind its kNN score; this turns them into one of the worded reasons of
``pipeline.lists.reasons`` ("because you watched X", "because you like Comedy", "you said
you like Jazz", "trending in en-GB").
"""

from __future__ import annotations

from pipeline.features.state import UserState
from pipeline.lists import reasons
from pipeline.model.arrays import FloatArray
from pipeline.model.catalog import Catalog
from pipeline.model.item_stats import GLOBAL_SEGMENT


def declared_reason(catalog: Catalog, state: UserState, item: int) -> str:
    """An item placed by the declared-interest prior: the declared category it matches."""
    said = [c for c in catalog.categories_of(item) if c in state.controls.declared]
    return reasons.you_said(said[0]) if said else reasons.TRENDING_NOW


def signal_reason(
    catalog: Catalog,
    state: UserState,
    *,
    anchor: int,
    best: str,
    row: FloatArray,
    item: int,
    segment: str,
    memo: dict[int, str],
) -> str:
    """Say which signal placed the item: its largest weighted feature contribution ``best``.

    ``anchor`` is the recent positive contributing most to the item's kNN score; ``memo``
    keeps the "because you watched X" text per anchor within one list.
    """
    if best == "knn" and row[0] > 0:
        return because_recent(catalog, state, anchor, memo)
    if best == "category" and row[1] > 0:
        liked = dict(state.top_categories(5))
        cats = [c for c in catalog.categories_of(item) if c in liked]
        if cats:
            return reasons.because_you_like(max(cats, key=liked.__getitem__))
    if best == "fresh" and row[7] > 0:
        return reasons.FRESH
    if segment != GLOBAL_SEGMENT:
        return reasons.trending_reason(segment)
    return reasons.category_trending(catalog.categories_of(item))


def because_recent(catalog: Catalog, state: UserState, anchor: int, memo: dict[int, str]) -> str:
    """Name a recent positive as the reason ("because you watched X")."""
    if anchor in memo:
        return memo[anchor]
    item_id = catalog.ids[anchor]
    # the anchor is a recent positive: name the interaction that made it one (a click the user
    # then skipped was clicked, not watched)
    kind = next(
        (h.kind for h in reversed(state.history) if h.item_id == item_id and h.weight > 0), ""
    )
    verb = "clicked" if kind == "click" else "watched"
    memo[anchor] = reasons.because(verb, catalog.titles[anchor] or item_id)
    return memo[anchor]
