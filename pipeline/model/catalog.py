"""The item catalogue as dense arrays, so ranking can score hundreds of candidates at once.

Items arrive from the items topic (item v1) or are first seen in events (then with no
categories until their item record arrives). Each item gets a stable dense index for the life
of the process; per-item numbers live in numpy arrays indexed by it, which turns candidate
scoring into a few vector operations instead of a Python loop per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.events import Item


@dataclass(slots=True)
class ItemInfo:
    """Metadata of one item, as published in its item v1 record."""

    item_id: str
    categories: tuple[str, ...] = ()
    duration_seconds: float | None = None
    published_ts: int | None = None
    creator_id: str | None = None
    title: str | None = None


class Catalog:
    """Dense index of items and categories with an item x category membership matrix.

    >>> c = Catalog()
    >>> c.upsert(ItemInfo("m1", ("Comedy",)))
    0
    >>> c.index_of("m1"), c.category_index("Comedy")
    (0, 0)
    """

    def __init__(self, capacity: int = 1024, category_capacity: int = 32) -> None:
        self._index: dict[str, int] = {}
        self._categories: dict[str, int] = {}
        self.infos: list[ItemInfo] = []
        self.ids: list[str] = []  # item id by index, for fast list comprehensions
        self.category_names: list[str] = []
        self.membership = np.zeros((capacity, category_capacity), dtype=np.float64)
        self.published_ts = np.zeros(capacity, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.infos)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def index_of(self, item_id: str) -> int:
        """Index of a known item; ``KeyError`` if unknown."""
        return self._index[item_id]

    def get(self, item_id: str) -> int | None:
        """Index of an item, or ``None`` when it was never seen."""
        return self._index.get(item_id)

    def ensure(self, item_id: str) -> int:
        """Index of an item, registering it (without metadata) when new."""
        idx = self._index.get(item_id)
        if idx is None:
            idx = self._add(ItemInfo(item_id))
        return idx

    def upsert(self, info: ItemInfo) -> int:
        """Register or update an item's metadata; returns its index."""
        idx = self._index.get(info.item_id)
        if idx is None:
            return self._add(info)
        self.infos[idx] = info
        self.membership[idx, :] = 0.0
        self._set_categories(idx, info.categories)
        self.published_ts[idx] = float(info.published_ts or 0)
        return idx

    def category_index(self, name: str) -> int:
        """Index of a category, registering it when new."""
        idx = self._categories.get(name)
        if idx is None:
            idx = len(self.category_names)
            self._categories[name] = idx
            self.category_names.append(name)
            if idx >= self.membership.shape[1]:
                grown = np.zeros((self.membership.shape[0], idx * 2), dtype=np.float64)
                grown[:, : self.membership.shape[1]] = self.membership
                self.membership = grown
        return idx

    def find_category(self, name: str) -> int | None:
        """Index of a known category, or ``None``."""
        return self._categories.get(name)

    def categories_of(self, idx: int) -> tuple[str, ...]:
        """Category names of the item at ``idx``."""
        return self.infos[idx].categories

    def item_id(self, idx: int) -> str:
        """The public id of the item at ``idx``."""
        return self.infos[idx].item_id

    def _add(self, info: ItemInfo) -> int:
        idx = len(self.infos)
        self._index[info.item_id] = idx
        self.infos.append(info)
        self.ids.append(info.item_id)
        if idx >= self.membership.shape[0]:
            self._grow(idx * 2)
        self._set_categories(idx, info.categories)
        self.published_ts[idx] = float(info.published_ts or 0)
        return idx

    def _set_categories(self, idx: int, categories: tuple[str, ...]) -> None:
        if not categories:
            return
        share = 1.0 / len(categories)  # an item's category mass sums to one
        for name in categories:
            c = self.category_index(name)  # may widen the matrix: index it afterwards
            self.membership[idx, c] = share

    def _grow(self, capacity: int) -> None:
        grown = np.zeros((capacity, self.membership.shape[1]), dtype=np.float64)
        grown[: self.membership.shape[0]] = self.membership
        self.membership = grown
        ts = np.zeros(capacity, dtype=np.float64)
        ts[: self.published_ts.shape[0]] = self.published_ts
        self.published_ts = ts


def item_info(item: Item) -> ItemInfo:
    """Catalogue entry of an item v1 record."""
    return ItemInfo(
        item_id=item.item_id,
        categories=tuple(item.categories),
        duration_seconds=item.duration_seconds,
        published_ts=item.published_ts,
        creator_id=item.creator_id,
        title=item.title,
    )
