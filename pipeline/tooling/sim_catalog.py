"""The simulated catalogue: items, how they are made, and the pools users browse.

Split from ``pipeline.tooling.simulator`` when the catalogue started to change during a run
(``pipeline.tooling.churn``): items are released, live channels go on and off air, old
items are retired. ``Pools`` is what browsing draws from: only the items available now,
weighted by their Zipf popularity, overall and per category. It is rebuilt lazily after a
change (``O(items)``, a few times a second at most), so a run without churn draws exactly
what it drew before the split.

>>> import random
>>> items = build_catalog(random.Random(1), 20, DEFAULT_EPOCH_MS)
>>> pools = Pools(items)
>>> pools.remove(items[0].item_id)
>>> pools.available(items[0].item_id), len(pools)
(False, 19)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, Final

from schemas.events import SCHEMA_VERSION

CATEGORIES: Final = (
    "Comedy", "Drama", "Action", "Documentary", "Music", "Gaming",
    "Sports", "News", "Kids", "SciFi", "Horror", "Cooking",
)  # fmt: skip
# Typical length of a piece of content in each category, in seconds (a log-normal spread
# around it gives each item its own duration).
TYPICAL_SECONDS: Final = {
    "Comedy": 600, "Drama": 2700, "Action": 1800, "Documentary": 2400, "Music": 240,
    "Gaming": 1200, "Sports": 900, "News": 300, "Kids": 660, "SciFi": 2400, "Horror": 1800,
    "Cooking": 720,
}  # fmt: skip
_ADJECTIVES: Final = (
    "Silent", "Golden", "Last", "Hidden", "Electric", "Broken", "Midnight", "Wild",
    "Lost", "Crimson", "Endless", "Little", "Secret", "Northern", "Burning", "Quiet",
)  # fmt: skip
_NOUNS: Final = (
    "Harbor", "Kitchen", "Signal", "Empire", "River", "Garden", "Machine", "Summer",
    "Frontier", "Echo", "Planet", "Season", "Circuit", "Valley", "Story", "Night",
)  # fmt: skip
DEFAULT_EPOCH_MS: Final = 1_735_689_600_000  # 2025-01-01T00:00:00Z, a fixed reference
YEAR_MS: Final = 365 * 86_400_000


@dataclass(frozen=True, slots=True)
class SimItem:
    """One catalogue entry; ``popularity`` is its Zipf weight (ground truth, not sent).

    ``available`` is sent only when set (live channels, item v1.1); ``available_until_ts``
    only for a limited release.
    """

    item_id: str
    categories: tuple[str, ...]
    duration_seconds: float
    creator_id: str
    title: str
    published_ts: int
    popularity: float
    available: bool | None = None
    available_until_ts: int | None = None

    def to_v1(self) -> dict[str, Any]:
        """The item as an item v1 dict."""
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "item_id": self.item_id,
            "categories": list(self.categories),
            "duration_seconds": self.duration_seconds,
            "published_ts": self.published_ts,
            "creator_id": self.creator_id,
            "title": self.title,
        }
        if self.available is not None:
            doc["available"] = self.available
        if self.available_until_ts is not None:
            doc["available_until_ts"] = self.available_until_ts
        return doc

    def with_availability(self, available: bool) -> SimItem:
        """The same item, on or off air."""
        return replace(self, available=available)


def make_item(
    rng: random.Random,
    item_id: str,
    creator: int,
    *,
    published_ts: int,
    popularity: float,
) -> SimItem:
    """An item by creator ``creator``: mostly in the creator's home category."""
    # Creators specialise: most of a creator's items share their home category.
    home = CATEGORIES[creator % len(CATEGORIES)]
    primary = home if rng.random() < 0.8 else rng.choice(CATEGORIES)
    categories: tuple[str, ...] = (primary,)
    if rng.random() < 0.35:
        categories += (rng.choice([c for c in CATEGORIES if c != primary]),)
    duration = max(30.0, round(TYPICAL_SECONDS[primary] * rng.lognormvariate(0.0, 0.35)))
    title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    return SimItem(
        item_id=item_id,
        categories=categories,
        duration_seconds=float(duration),
        creator_id=f"c{creator}",
        title=title,
        published_ts=published_ts,
        popularity=popularity,
    )


def n_creators(n_items: int) -> int:
    """Creators of a catalogue of ``n_items`` (about eight items each)."""
    return max(1, n_items // 8)


def build_catalog(rng: random.Random, n_items: int, epoch_ms: int) -> list[SimItem]:
    """``n_items`` items published in the year before ``epoch_ms``, Zipf popularity."""
    creators = n_creators(n_items)
    ranks = list(range(1, n_items + 1))
    rng.shuffle(ranks)  # popularity is independent of the item id
    items = []
    for i in range(n_items):
        creator = rng.randrange(creators)
        item = make_item(rng, f"i{i}", creator, published_ts=0, popularity=1.0 / ranks[i])
        # drawn last, as before the catalogue could change: equal seeds, equal catalogues
        items.append(replace(item, published_ts=epoch_ms - rng.randrange(YEAR_MS)))
    return items


class Pools:
    """The available items users browse: overall and per category, by popularity."""

    def __init__(self, items: list[SimItem]) -> None:
        self._items = {item.item_id: item for item in items}
        self._dirty = True
        self._all: list[SimItem] = []
        self._all_cum: list[float] = []
        self._by_category: dict[str, tuple[list[SimItem], list[float]]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def available(self, item_id: str) -> bool:
        """Whether users can find (and watch) the item now."""
        return item_id in self._items

    def add(self, item: SimItem) -> None:
        """The item is available (released, or on air)."""
        self._items[item.item_id] = item
        self._dirty = True

    def remove(self, item_id: str) -> None:
        """The item is gone (retired, expired, or off air)."""
        if self._items.pop(item_id, None) is not None:
            self._dirty = True

    def any(self, rng: random.Random) -> SimItem:
        """An available item drawn by popularity."""
        self._rebuild()
        return rng.choices(self._all, cum_weights=self._all_cum)[0]

    def in_category(self, rng: random.Random, category: str) -> SimItem | None:
        """An available item of ``category`` drawn by popularity (None if there is none)."""
        self._rebuild()
        pool = self._by_category.get(category)
        if pool is None:
            return None
        return rng.choices(pool[0], cum_weights=pool[1])[0]

    def _rebuild(self) -> None:
        if not self._dirty:
            return
        self._all = list(self._items.values())
        self._all_cum = _cumulative([item.popularity for item in self._all])
        self._by_category = {}
        for category in CATEGORIES:
            members = [item for item in self._all if category in item.categories]
            if members:
                cum = _cumulative([item.popularity for item in members])
                self._by_category[category] = (members, cum)
        self._dirty = False


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out
