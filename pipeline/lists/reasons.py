"""The human reason on every list item: which signal placed it there, in words.

One home for the wording, so the worker's lists, the API's trending fallback and the
console say the same thing.

>>> trending_reason("locale:en-GB")
'trending in en-GB'
>>> [r for _, r in trending_segments("en-GB", "tv")]
['trending in en-GB', 'trending on tv', 'trending now']
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.model.item_stats import GLOBAL_SEGMENT

TRENDING_NOW = "trending now"
FRESH = "new this week"
EXPLORE_FRESH = "exploration: new this week"
EXPLORE_TRENDING = "exploration: trending outside your usual"


def trending_reason(segment: str) -> str:
    """The reason for an item taken from a segment's trending list."""
    if segment == GLOBAL_SEGMENT:
        return TRENDING_NOW
    kind, _, value = segment.partition(":")
    return f"trending on {value}" if kind == "device" else f"trending in {value}"


def trending_segments(locale: str | None, device: str | None) -> list[tuple[str, str]]:
    """``(segment, reason)`` to try for a context, most specific first."""
    segments = []
    if locale:
        segments.append(f"locale:{locale}")
    if device:
        segments.append(f"device:{device}")
    segments.append(GLOBAL_SEGMENT)
    return [(s, trending_reason(s)) for s in segments]


def category_trending(categories: Sequence[str]) -> str:
    """An item placed by popularity, named by its first category."""
    return f"trending in {categories[0]}" if categories else TRENDING_NOW


def because(verb: str, title: str) -> str:
    """An item placed by co-occurrence with something the user did."""
    return f"because you {verb} {title}"


def because_you_like(category: str) -> str:
    """An item placed by the user's observed category taste."""
    return f"because you like {category}"


def you_said(category: str) -> str:
    """An item placed by a declared interest."""
    return f"you said you like {category}"
