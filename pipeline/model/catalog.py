"""The item catalogue as dense arrays, bounded, so ranking can score hundreds of candidates at once.

Items arrive from the items topic (item v1) or are first seen in events (then with no
categories until their item record arrives). Each item gets a dense index; per-item numbers
live in numpy arrays indexed by it, which turns candidate scoring into a few vector
operations instead of a Python loop per candidate.

**Bounded.** At most ``max_items`` items (``RECLOOP_CATALOG_MAX_ITEMS``). When a new item
arrives at a full catalogue, the least recently seen 1 % are evicted; ``evict_stale`` (run
every 1,024 records, by the models' clock) evicts items not seen for ``evict_after_ms``
(``RECLOOP_CATALOG_EVICT_AFTER_SECONDS``), a bounded slice of the catalogue per call.
"Seen" means registered, updated, or named by an event (as its item or in its context).
An evicted item's index goes to a free list and is reused; ``on_evict`` lets the models
that hold per-item state forget it first (and ``on_grow`` size their vectors alike). An
evicted item that comes back is a new item (its metadata returns with its next item record).

**Sparse categories** (``pipeline.model.categories``): per item the indices of its
categories and the share ``1 / len(categories)`` of each, never an item x category matrix.

**Availability** (item v1.1, ``pipeline.model.availability``): per index the window
``[avail_from, avail_until)`` in which the item may be recommended. The windows of
restricted items are also kept by id (``restricted``, at most ``max_items``), so an item
that is evicted and comes back (named by an event) is still withdrawn.

Memory: ~``max_items`` x (64 bytes of arrays + 4 bytes per category column + the id, title
and creator strings and one dict entry, ~150-250 bytes in CPython).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.model.arrays import BoolArray, FloatArray, Int32Array, IntArray
from pipeline.model.availability import ALWAYS, NEVER, Availability
from pipeline.model.categories import CategoryMembership
from pipeline.model.changes import ChangeLog
from schemas.events import Item

EVICT_SHARE = 0.01  # of max_items evicted at once when a new item finds the catalogue full
SWEEP_SLICE = 65_536  # indices checked per ``evict_stale`` call
RECENT_LIVE = 1_024  # items that went live lately, kept for the new-item slot


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
    """Dense, bounded index of items and categories with sparse category membership.

    >>> c = Catalog()
    >>> c.upsert(ItemInfo("m1", ("Comedy",)))
    0
    >>> c.index_of("m1"), c.category_index("Comedy"), c.categories_of(0)
    (0, 0, ('Comedy',))
    """

    def __init__(
        self,
        capacity: int = 1024,
        *,
        max_items: int = 2_000_000,
        evict_after_ms: int = 0,
        on_evict: Callable[[IntArray], None] | None = None,
        on_grow: Callable[[int], None] | None = None,
    ) -> None:
        if max_items < 64:
            msg = f"max_items must be at least 64, got {max_items}"
            raise ValueError(msg)
        self.max_items = max_items
        self.evict_after_ms = evict_after_ms
        self.on_evict = on_evict
        self.on_grow = on_grow
        self._index: dict[str, int] = {}
        self.ids: list[str] = []  # item id by index ("" for a free index)
        self.category_tuples: list[tuple[str, ...]] = []
        self.titles: list[str | None] = []
        self.creators: list[str | None] = []
        self._free: list[int] = []
        cap = max(1, min(capacity, max_items))
        self.categories = CategoryMembership(cap)
        self.published_ts = np.zeros(cap, dtype=np.float64)
        self.duration = np.full(cap, np.nan, dtype=np.float64)
        self.last_seen = np.zeros(cap, dtype=np.int64)  # ms, for time-based eviction
        self.touched = np.zeros(cap, dtype=np.int64)  # touch counter, for LRU eviction
        self.live = np.zeros(cap, dtype=bool)
        self.avail_from = np.zeros(cap, dtype=np.int64)
        self.avail_until = np.full(cap, NEVER, dtype=np.int64)
        self.live_since = np.zeros(cap, dtype=np.int64)  # when it last became available (ms)
        self.recent_live: OrderedDict[int, int] = OrderedDict()  # index -> ms, newest last
        self.restricted: OrderedDict[str, Availability] = OrderedDict()
        self.clock = 0  # latest timestamp seen (ms)
        self.touches = 0
        self._sweep = 0
        self.changes = ChangeLog()  # indices registered, evicted, or whose categories or
        self.evictions = ChangeLog()  # publication time changed; indices evicted
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    @property
    def category_names(self) -> list[str]:
        """Known categories, by index."""
        return self.categories.names

    @property
    def cats(self) -> Int32Array:
        """Per item index, its category indices (-1 padded)."""
        return self.categories.cats

    @property
    def share(self) -> FloatArray:
        """Per item index, ``1 / len(categories)`` (0 without one)."""
        return self.categories.share

    @property
    def slots(self) -> int:
        """Indices in use or freed so far: every item index is below this."""
        return len(self.ids)

    def index_of(self, item_id: str) -> int:
        """Index of a known item; ``KeyError`` if unknown."""
        return self._index[item_id]

    def get(self, item_id: str) -> int | None:
        """Index of an item, or ``None`` when it is not in the catalogue."""
        return self._index.get(item_id)

    def ensure(self, item_id: str, ts: int | None = None) -> int:
        """Index of an item seen now, registering it (without metadata) when new."""
        if ts is not None and ts > self.clock:
            self.clock = ts
        idx = self._index.get(item_id)
        if idx is None:
            return self._add(ItemInfo(item_id))
        self._touch(idx)
        return idx

    def ensure_many(self, item_ids: Sequence[str], ts: int) -> list[int]:
        """``ensure`` for several items seen at ``ts`` (the known ones touched first).

        Touching the known ones before registering the new ones keeps them out of an
        eviction the new ones may cause.
        """
        if ts > self.clock:
            self.clock = ts
        found = [self._index.get(i) for i in item_ids]
        known = [i for i in found if i is not None]
        if known:
            idx = np.array(known, dtype=np.int64)
            self.touched[idx] = np.arange(self.touches, self.touches + idx.shape[0])
            self.last_seen[idx] = self.clock
            self.touches += idx.shape[0]
        if len(known) == len(found):
            return known
        return [self.ensure(item_ids[k]) if i is None else i for k, i in enumerate(found)]

    def upsert(self, info: ItemInfo) -> int:
        """Register or update an item's metadata; returns its index."""
        idx = self._index.get(info.item_id)
        if idx is None:
            return self._add(info)
        cats, published = self.cats[idx].copy(), self.published_ts[idx]
        self._set(idx, info)
        self._touch(idx)
        if published != self.published_ts[idx] or not np.array_equal(cats, self.cats[idx]):
            self.changes.append(idx)  # what the candidate indexes rank by changed
        return idx

    def set_availability(
        self, item_id: str, window: Availability, *, now_ms: int | None = None
    ) -> int:
        """Set an item's availability window (registering the item); returns its index.

        A change is logged in ``changes``, so the candidate pools drop or take the item.
        With ``now_ms``, an item that was unavailable and is available now counts as gone
        live then (``live_since``, ``recent_live``: the new-item slot's live channels).
        """
        before = self.availability(item_id)
        if window.restricted:
            self.restricted[item_id] = window
            self.restricted.move_to_end(item_id)
            while len(self.restricted) > self.max_items:
                self.restricted.popitem(last=False)
        else:
            self.restricted.pop(item_id, None)
        idx = self._index.get(item_id)
        if idx is None:
            idx = self._add(ItemInfo(item_id))
        elif (self.avail_from[idx], self.avail_until[idx]) != (window.from_ms, window.until_ms):
            self.avail_from[idx], self.avail_until[idx] = window.from_ms, window.until_ms
            self.changes.append(idx)
        if now_ms is not None and not before.at(now_ms) and window.at(now_ms):
            self.went_live(idx, now_ms)
        return idx

    def went_live(self, idx: int, now_ms: int) -> None:
        """The item became available at ``now_ms`` (at most ``RECENT_LIVE`` remembered)."""
        self.live_since[idx] = now_ms
        self.recent_live[idx] = now_ms
        self.recent_live.move_to_end(idx)
        while len(self.recent_live) > RECENT_LIVE:
            self.recent_live.popitem(last=False)

    def availability(self, item_id: str) -> Availability:
        """The item's window (always available when unrestricted or unknown)."""
        return self.restricted.get(item_id, ALWAYS)

    def available_at(self, items: IntArray, now_ms: int) -> BoolArray:
        """Per item index, whether it may be recommended at ``now_ms``."""
        return (self.avail_from[items] <= now_ms) & (now_ms < self.avail_until[items])

    def category_index(self, name: str) -> int:
        """Index of a category, registering it when new (``-1`` past ``MAX_CATEGORIES``)."""
        return self.categories.index(name)

    def find_category(self, name: str) -> int | None:
        """Index of a known category, or ``None``."""
        return self.categories.find(name)

    def categories_of(self, idx: int) -> tuple[str, ...]:
        """Category names of the item at ``idx``."""
        return self.category_tuples[idx]

    def item_id(self, idx: int) -> str:
        """The public id of the item at ``idx``."""
        return self.ids[idx]

    def info(self, idx: int) -> ItemInfo:
        """The item's metadata as an ``ItemInfo``."""
        duration = float(self.duration[idx])
        published = int(self.published_ts[idx])
        return ItemInfo(
            self.ids[idx],
            self.category_tuples[idx],
            None if np.isnan(duration) else duration,
            published or None,
            self.creators[idx],
            self.titles[idx],
        )

    def duration_of(self, idx: int) -> float | None:
        """The item's duration in seconds, when known."""
        duration = float(self.duration[idx])
        return None if math.isnan(duration) else duration  # math: a scalar, per event

    def category_mass(self, items: IntArray, values: FloatArray) -> FloatArray:
        """Per item, ``sum(values[c] * share)`` over its categories (``values`` per category)."""
        return self.categories.mass(items, values)

    def members(self, category: int) -> IntArray:
        """Indices of the live items of a category (a scan: for index rebuilds only)."""
        return self.categories.members(category, self.live, self.slots)

    def live_indices(self, limit: int) -> IntArray:
        """The first ``limit`` live indices."""
        n = self.slots
        step = max(limit, 1024)
        out = np.zeros(0, dtype=np.int64)
        for lo in range(0, n, step):
            out = np.concatenate((out, lo + np.flatnonzero(self.live[lo : min(n, lo + step)])))
            if out.shape[0] >= limit:
                break
        return out[:limit]

    def evict_stale(self, now_ts: int) -> int:
        """Evict items not seen for ``evict_after_ms`` in the next slice; how many."""
        n = self.slots
        if self.evict_after_ms <= 0 or n == 0:
            return 0
        lo = self._sweep if self._sweep < n else 0
        hi = min(n, lo + SWEEP_SLICE)
        self._sweep = hi
        seen = self.last_seen[lo:hi]
        seen[seen == 0] = now_ts  # registered before the clock started: its time starts now
        old = lo + np.flatnonzero(self.live[lo:hi] & (seen < now_ts - self.evict_after_ms))
        self.evict(old)
        return int(old.shape[0])

    def evict(self, items: IntArray) -> None:
        """Remove items (``on_evict`` first, so models forget their state); indices are freed."""
        if items.shape[0] == 0:
            return
        if self.on_evict is not None:
            self.on_evict(items)
        for idx in items.tolist():
            del self._index[self.ids[idx]]
            self.ids[idx] = ""
            self.category_tuples[idx] = ()
            self.titles[idx] = self.creators[idx] = None
            self._free.append(idx)
        self.categories.clear(items)
        self.published_ts[items] = 0.0
        self.duration[items] = np.nan
        self.live[items] = False
        self.avail_from[items] = 0
        self.avail_until[items] = NEVER
        self.live_since[items] = 0
        for idx in items.tolist():
            self.recent_live.pop(idx, None)
        self.changes.append_many(items)
        self.evictions.append_many(items)
        self.evicted += items.shape[0]

    def nbytes(self) -> int:
        """Bytes of the arrays (the strings and dicts come on top, see the module doc)."""
        arrays = (
            self.published_ts,
            self.duration,
            self.last_seen,
            self.touched,
            self.live,
            self.avail_from,
            self.avail_until,
            self.live_since,
        )
        return self.categories.nbytes() + sum(int(a.nbytes) for a in arrays)

    # ------------------------------------------------------------------ internals
    def _touch(self, idx: int) -> None:
        self.touched[idx] = self.touches
        self.touches += 1
        self.last_seen[idx] = self.clock

    def _add(self, info: ItemInfo) -> int:
        if len(self._index) >= self.max_items:
            self._evict_least_recent()
        if self._free:
            idx = self._free.pop()
            self.ids[idx] = info.item_id
        else:
            idx = len(self.ids)
            self.ids.append(info.item_id)
            self.category_tuples.append(())
            self.titles.append(None)
            self.creators.append(None)
            if idx >= self.share.shape[0]:
                self._grow(min(self.max_items, 2 * idx))
        self._index[info.item_id] = idx
        self.live[idx] = True
        window = self.restricted.get(info.item_id, ALWAYS)
        self.avail_from[idx], self.avail_until[idx] = window.from_ms, window.until_ms
        self._set(idx, info)
        self._touch(idx)
        self.changes.append(idx)
        return idx

    def _set(self, idx: int, info: ItemInfo) -> None:
        self.category_tuples[idx] = self.categories.assign(idx, info.categories)
        self.titles[idx] = info.title
        self.creators[idx] = info.creator_id
        self.published_ts[idx] = float(info.published_ts or 0)
        self.duration[idx] = np.nan if info.duration_seconds is None else info.duration_seconds

    def _evict_least_recent(self) -> None:
        n = self.slots
        count = max(1, int(self.max_items * EVICT_SHARE))
        order = np.where(self.live[:n], self.touched[:n], np.iinfo(np.int64).max)
        self.evict(np.sort(np.argpartition(order, count - 1)[:count]).astype(np.int64))

    def _grow(self, capacity: int) -> None:
        capacity = max(capacity, self.share.shape[0] + 1)
        have = self.share.shape[0]

        def grown(arr: np.ndarray, fill: object) -> np.ndarray:
            out = np.full((capacity, *arr.shape[1:]), fill, dtype=arr.dtype)
            out[:have] = arr
            return out

        self.categories.grow(capacity)
        self.published_ts = grown(self.published_ts, 0.0)
        self.duration = grown(self.duration, np.nan)
        self.last_seen = grown(self.last_seen, 0)
        self.touched = grown(self.touched, 0)
        self.live = grown(self.live, False)
        self.avail_from = grown(self.avail_from, 0)
        self.avail_until = grown(self.avail_until, NEVER)
        self.live_since = grown(self.live_since, 0)
        if self.on_grow is not None:
            self.on_grow(capacity)


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
