"""Sharing one model between workers: a log of learn records plus versioned snapshots.

Every worker appends the records of each batch it processes to the Redis stream
``recloop:model:log`` (just before the batch's user writes) and, every
``model_sync_seconds``, applies the records other workers appended. The shared models are
therefore at most ``model_sync_seconds`` (plus one batch) behind the whole traffic: the
documented staleness bound.

Every ``model_snapshot_seconds`` one worker (whoever takes a short lock) writes the whole
model as ``recloop:model:snapshot:<version>`` with the log position it includes. A starting
worker loads the newest snapshot and replays the log after that position, so model state
survives restarts and scale-out. The log is trimmed to ``retention`` (3 snapshot intervals
by default), which bounds its memory.

Entries carry a batch id, and readers ignore an id they have already applied: a write
retried after a lost reply cannot double-count. Each record also names the event it comes
from (``topic:partition`` and offset, field ``o``): a worker killed between the entry and its
users' writes has its batch redelivered and logged again under a new id, and so are the
events of a user whose write conflicted; readers skip the records whose offset the log has
already taught them (``SharedModels.admit``, in log order, the reader's own entries
included). Entries written before field ``o`` read as unguarded.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson

from pipeline.model.record import LearnRecord
from pipeline.stores.client import RedisClient
from pipeline.stores.codec import decode_snapshot, encode_snapshot
from pipeline.stores.commands import Commands
from pipeline.stores.keys import RedisKeys
from schemas.events import Item
from schemas.validation import item_document

log = logging.getLogger(__name__)

_SEEN_BATCHES = 10_000

Source = tuple[str, int]  # where a record's event was read: ``topic:partition``, offset
# one record read from the log: (record, its source); ``(None, source)`` for this worker's own
LogRecord = tuple[LearnRecord | None, Source | None]
_KEEP_SNAPSHOTS = 3


def wire(r: LearnRecord) -> tuple[object, ...]:
    """``LearnRecord.to_json`` as orjson writes it, without copying the tuples into lists.

    orjson writes a tuple as an array, so the bytes are the same (tested); the copies were
    a measurable part of a batch's encoding (issue #15).
    """
    return (
        r.item_id, r.ts, r.kind, r.weight, r.completion, r.segments, r.context,
        r.first, r.positive, r.stage,
    )  # fmt: skip


class ModelLog:
    """One worker's view of the shared model log."""

    def __init__(
        self, client: RedisClient, *, keys: RedisKeys, worker_id: str, retention_seconds: float
    ) -> None:
        self.client = client
        self.keys = keys
        self.worker_id = worker_id
        self.retention_ms = int(retention_seconds * 1000)
        self.last_id = "0-0"
        self._seen: OrderedDict[str, None] = OrderedDict()

    def new_batch_id(self) -> str:
        """A unique id for one batch's entry."""
        return uuid.uuid4().hex

    def queue_append(
        self,
        cmds: Commands,
        batch_id: str,
        records: list[LearnRecord],
        items: list[Item],
        *,
        now_ms: int,
        sources: Sequence[Source] = (),
    ) -> None:
        """Queue one entry with a batch's records (from events at ``sources``) and items."""
        if not records and not items:
            return
        payload = orjson.dumps([wire(r) for r in records])
        item_docs = orjson.dumps([item_document(i) for i in items])
        min_id = max(0, now_ms - self.retention_ms)
        fields: list[Any] = ["w", self.worker_id, "b", batch_id, "r", payload, "i", item_docs]
        if sources:
            fields += ["o", orjson.dumps(list(sources))]  # tuples serialise as arrays
        cmds.command("XADD", self.keys.model_log, "MINID", "~", str(min_id), "*", *fields)
        self._remember(batch_id)

    async def read_new(self, count: int = 200) -> tuple[list[LogRecord], list[Item]]:
        """What the log gained since the last read (in log order), and others' new items.

        Other workers' records come with their event's source (``None`` in entries written
        before sources were logged); this worker's own entries come as ``(None, source)``
        only: their records were applied when they were written, but their place in the log
        order counts for the guard (``SharedModels.admit``).
        """
        out: list[LogRecord] = []
        items: list[Item] = []
        while True:
            reply: Any = await self.client.xread({self.keys.model_log: self.last_id}, count=count)
            if not reply:
                return out, items
            entries = reply[0][1]
            for entry_id, fields in entries:
                self.last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                own = fields[b"w"].decode() == self.worker_id
                batch = fields[b"b"].decode()
                if not own and batch in self._seen:
                    continue
                raw = fields.get(b"o")
                where = [(str(t), int(o)) for t, o in orjson.loads(raw)] if raw else []
                if own:
                    out.extend((None, w) for w in where)
                    continue
                self._remember(batch)
                records = [LearnRecord.from_json(r) for r in orjson.loads(fields[b"r"])]
                sources: list[Source | None] = [*where]
                sources += [None] * (len(records) - len(sources))
                out.extend(zip(records, sources, strict=True))
                items.extend(Item.model_validate(d) for d in orjson.loads(fields[b"i"]))
            if len(entries) < count:
                return out, items

    async def write_snapshot(
        self, doc: dict[str, Any], *, lock_seconds: float, now_ms: int
    ) -> int | None:
        """Write a snapshot document unless another worker holds the lock; its version.

        The caller syncs first and must not yield to the event loop between its last
        ``read_new`` and building ``doc``, so the snapshot holds exactly the log up to
        ``last_id``.
        """
        doc = {**doc, "log_id": self.last_id, "written_by": self.worker_id, "written_ts": now_ms}
        locked = await self.client.set(
            self.keys.model_snapshot_lock, self.worker_id, nx=True, ex=max(1, int(lock_seconds))
        )
        if not locked:
            return None
        # Compressing is ~90 % of a snapshot's cost (2 s for 4M neighbour entries) and zlib
        # releases the GIL: in a thread it no longer stalls every batch and timer. ``doc``
        # holds copies (``models_to_dict``), so the models may change meanwhile.
        blob = await asyncio.to_thread(encode_snapshot, doc)
        version = int(await self.client.incr(self.keys.model_version))
        # one key at a time (they may live on different cluster nodes), in an order that
        # never lets `latest` name a snapshot not written yet
        await self.client.set(self.keys.model_snapshot(version), blob)
        await self.client.set(self.keys.model_snapshot_latest, version)
        await self.client.delete(self.keys.model_snapshot(version - _KEEP_SNAPSHOTS))
        log.info("model snapshot written version=%d bytes=%d", version, len(blob))
        return version

    async def load_latest(self) -> tuple[dict[str, Any] | None, int]:
        """The newest snapshot document (None when there is none) and its version.

        Reading continues from the log position the snapshot includes.
        """
        doc, version = await read_latest_snapshot(self.client, self.keys)
        if doc is not None:
            self.last_id = str(doc["log_id"])
            log.info("model snapshot loaded version=%d log_id=%s", version, self.last_id)
        return doc, version

    def _remember(self, batch_id: str) -> None:
        self._seen[batch_id] = None
        while len(self._seen) > _SEEN_BATCHES:
            self._seen.popitem(last=False)


async def read_latest_snapshot(
    client: RedisClient, keys: RedisKeys
) -> tuple[dict[str, Any] | None, int]:
    """The newest snapshot document and its version (``None, 0`` when there is none)."""
    raw_version: Any = await client.get(keys.model_snapshot_latest)
    if raw_version is None:
        return None, 0
    version = int(raw_version)
    blob: Any = await client.get(keys.model_snapshot(version))
    if blob is None:
        return None, 0
    return decode_snapshot(blob), version
