"""The catalogue as the workers know it: newest model snapshot plus the model log's items.

The serve process keeps no state of its own. Item metadata and statistics come from what
the workers wrote to Redis: the newest snapshot (``recloop:model:snapshot:<N>``: catalogue
and item statistics, rewritten every ``model_snapshot_seconds``) and, for items added since,
the ``i`` field of the entries of ``recloop:model:log``. Statistics are therefore as of the
snapshot (``stats_ts``); metadata is at most ``refresh_seconds`` old.

The view refreshes on demand (a request for an item), at most every ``refresh_seconds``, and
reads the log in bounded pages, so a busy pipeline costs the serve process little.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.model.snapshot import item_rows
from pipeline.stores.client import RedisClient
from pipeline.stores.keys import RedisKeys
from pipeline.stores.model_log import read_latest_snapshot

log = logging.getLogger(__name__)

_LOG_PAGE = 200
_LOG_PAGES_PER_REFRESH = 25


@dataclass(slots=True)
class ItemEntry:
    """What is known about one item."""

    item_id: str
    categories: list[str]
    title: str | None = None
    creator_id: str | None = None
    duration_seconds: float | None = None
    published_ts: int | None = None
    stats: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Metadata only (what a list row needs)."""
        return {"item_id": self.item_id, "categories": self.categories, "title": self.title}

    def document(self) -> dict[str, Any]:
        """Metadata and statistics."""
        return {
            "item_id": self.item_id,
            "categories": self.categories,
            "title": self.title,
            "creator_id": self.creator_id,
            "duration_seconds": self.duration_seconds,
            "published_ts": self.published_ts,
            "stats": self.stats,
        }


def item_stats(st: dict[str, Any], i: int) -> dict[str, float]:
    """Statistics of the item at dense index ``i`` of a snapshot (smoothed like the engine)."""

    def at(name: str) -> float:
        values = st.get(name) or []
        return float(values[i]) if i < len(values) else 0.0

    interactions, skips, watches = at("interactions"), at("skips"), at("watches")
    return {
        "interactions": interactions,
        "skips": skips,
        "watches": watches,
        "skip_rate": (skips + 1.0) / (interactions + 10.0),
        "mean_completion": (at("completion_sum") + 1.0) / (watches + 2.0),
        "popularity": at("popularity"),
    }


class CatalogueView:
    """Items and their statistics, read from the workers' snapshot and log."""

    def __init__(
        self, client: RedisClient, keys: RedisKeys, *, refresh_seconds: float = 2.0
    ) -> None:
        self.client = client
        self.keys = keys
        self.refresh_seconds = refresh_seconds
        self.items: dict[str, ItemEntry] = {}
        self.snapshot_version = 0
        self.stats_ts: int | None = None
        self._log_id = "0-0"
        self._checked = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self, *, force: bool = False) -> None:
        """Catch up with a newer snapshot and the log, unless done within refresh_seconds."""
        if not force and time.monotonic() - self._checked < self.refresh_seconds:
            return
        async with self._lock:
            if not force and time.monotonic() - self._checked < self.refresh_seconds:
                return
            await self._load_snapshot()
            await self._read_log()
            self._checked = time.monotonic()

    async def _load_snapshot(self) -> None:
        raw_version: Any = await self.client.get(self.keys.model_snapshot_latest)
        if raw_version is None or int(raw_version) == self.snapshot_version:
            return
        doc, version = await read_latest_snapshot(self.client, self.keys, rows=False)
        if doc is None:
            return
        stats = doc.get("stats") or {}
        for i, (item_id, cats, duration, published, creator, title) in enumerate(item_rows(doc)):
            self.items[item_id] = ItemEntry(
                item_id, list(cats), title, creator, duration, published, item_stats(stats, i)
            )
        self.snapshot_version = version
        self.stats_ts = int(doc.get("written_ts") or 0) or None
        snapshot_log_id = str(doc.get("log_id") or "0-0")
        if _stream_id(snapshot_log_id) > _stream_id(self._log_id):
            self._log_id = snapshot_log_id
        log.debug("catalogue snapshot loaded version=%d items=%d", version, len(self.items))

    async def _read_log(self) -> None:
        for _ in range(_LOG_PAGES_PER_REFRESH):
            reply: Any = await self.client.xread(
                {self.keys.model_log: self._log_id}, count=_LOG_PAGE
            )
            if not reply:
                return
            entries = reply[0][1]
            for entry_id, fields in entries:
                self._log_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                raw_items = fields.get(b"i")
                if not raw_items or raw_items == b"[]":
                    continue
                for d in orjson.loads(raw_items):
                    known = self.items.get(d["item_id"])
                    self.items[d["item_id"]] = ItemEntry(
                        d["item_id"],
                        list(d.get("categories") or []),
                        d.get("title"),
                        d.get("creator_id"),
                        d.get("duration_seconds"),
                        d.get("published_ts"),
                        known.stats if known else {},
                    )
            if len(entries) < _LOG_PAGE:
                return

    def get(self, item_id: str) -> ItemEntry | None:
        """The item, or None when the workers have not seen it."""
        return self.items.get(item_id)

    def summaries(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        """``item_id -> summary`` for the known ones among ``item_ids``."""
        out = {}
        for item_id in item_ids:
            entry = self.items.get(item_id)
            if entry is not None:
                out[item_id] = entry.summary()
        return out

    def categories(self) -> dict[str, int]:
        """Category -> number of items."""
        counts: dict[str, int] = {}
        for entry in self.items.values():
            for cat in entry.categories:
                counts[cat] = counts.get(cat, 0) + 1
        return dict(sorted(counts.items()))

    def list(self, category: str | None, limit: int) -> list[ItemEntry]:
        """Items (of a category), most popular first, then newest."""
        chosen = [e for e in self.items.values() if category is None or category in e.categories]
        chosen.sort(
            key=lambda e: (-e.stats.get("popularity", 0.0), -(e.published_ts or 0), e.item_id)
        )
        return chosen[:limit]


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms or 0), int(seq or 0)
