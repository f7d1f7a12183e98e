"""Sharing one model between workers: a log of learn records plus versioned snapshots.

Every worker appends the records of each batch it processes to the Redis stream
``recloop:model:log`` (just before the batch's user writes) and, every
``model_sync_seconds``, applies the records other workers appended. The shared models are
therefore at most ``model_sync_seconds`` (plus one batch) behind the whole traffic: the
documented staleness bound.

Every ``model_snapshot_seconds`` one worker (whoever takes a short lock) writes the whole
model as ``recloop:model:snapshot:<version>`` (a header with the log position it includes)
and ``recloop:model:snapshot:<version>:rows:<k>`` (the neighbour rows, in parts of at most
``PART_ENTRIES`` entries), building them off the event loop. A starting
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pipeline.model.record import LearnRecord
from pipeline.model.snapshot import PART_ENTRIES, FrozenModels, NeighborColumns
from pipeline.stores.client import RedisClient
from pipeline.stores.codec import decode_snapshot, encode_header, encode_rows, snapshot_parts
from pipeline.stores.commands import Commands, Script, send
from pipeline.stores.keys import RedisKeys
from schemas.events import Item
from schemas.validation import item_document

log = logging.getLogger(__name__)

_SEEN_BATCHES = 10_000

Source = tuple[str, int]  # where a record's event was read: ``topic:partition``, offset
# one record read from the log: (record, its source); ``(None, source)`` for this worker's own
LogRecord = tuple[LearnRecord | None, Source | None]
_KEEP_SNAPSHOTS = 3
_RAISE_LATEST = Script.inline(
    "raise_latest",
    "if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[1]) or '0') then "
    "redis.call('SET', KEYS[1], ARGV[1]) return 1 end return 0",
)


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

    async def lock_snapshot(self, lock_seconds: float) -> bool:
        """Take the short snapshot lock unless another worker holds it (one writer per interval).

        Taken before the models are copied, so a worker that will not write pays nothing.
        """
        locked = await self.client.set(
            self.keys.model_snapshot_lock, self.worker_id, nx=True, ex=max(1, int(lock_seconds))
        )
        return bool(locked)

    async def write_snapshot(
        self, frozen: FrozenModels, *, log_id: str, now_ms: int
    ) -> SnapshotWritten:
        """Write a snapshot of ``frozen``, the models as of log position ``log_id``.

        The caller takes the lock (``lock_snapshot``), syncs, and copies the models
        (``freeze``) and ``last_id`` with no ``await`` between its last ``read_new`` and the
        copy, so the snapshot holds exactly the log up to ``log_id``. Everything here reads
        the copy: each neighbour part is cut and compressed in a thread (numpy and zlib
        release the GIL) and written before the next is built, so the event loop keeps
        running and at most one part's bytes are held besides the copy. Parts go first, the
        header after them, then ``latest``: a reader never finds a header whose parts are
        not written yet.
        """
        version = int(await self.client.incr(self.keys.model_version))
        parts = frozen.row_parts(PART_ENTRIES)
        written = SnapshotWritten(version)
        while True:
            blob = await asyncio.to_thread(_next_part, parts)
            if blob is None:
                break
            blob_rows, blob_entries, data = blob
            await self.client.set(self.keys.model_snapshot_rows(version, written.parts), data)
            written.parts += 1
            written.rows += blob_rows
            written.entries += blob_entries
            written.bytes += len(data)
        meta = {"log_id": log_id, "written_by": self.worker_id, "written_ts": now_ms}
        header = await asyncio.to_thread(
            lambda: encode_header({**frozen.header(), **meta}, written.summary())
        )
        written.bytes += len(header)
        # one key at a time (they may live on different cluster nodes), in an order that
        # never lets `latest` name a snapshot not written yet
        await self.client.set(self.keys.model_snapshot(version), header)
        # `latest` only moves forward: a writer slower than a later one (its lock expired
        # meanwhile) leaves the later snapshot named
        raise_latest = Commands()
        raise_latest.script(_RAISE_LATEST, [self.keys.model_snapshot_latest], [version])
        if not (await send(self.client, raise_latest))[0]:
            log.info("model snapshot version=%d superseded by a newer one", version)
        await delete_snapshot(self.client, self.keys, version - _KEEP_SNAPSHOTS)
        log.info(
            "model snapshot written version=%d parts=%d entries=%d bytes=%d",
            version, written.parts, written.entries, written.bytes,
        )  # fmt: skip
        return written

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


@dataclass
class SnapshotWritten:
    """What ``write_snapshot`` stored: version, neighbour parts, rows, entries, bytes."""

    version: int
    parts: int = 0
    rows: int = 0
    entries: int = 0
    bytes: int = 0

    def summary(self) -> dict[str, int]:
        """The header's ``cooc.rows``."""
        return {"parts": self.parts, "rows": self.rows, "entries": self.entries}


def _next_part(parts: Iterator[NeighborColumns]) -> tuple[int, int, bytes] | None:
    """The next part's rows, entries and stored bytes (``None`` after the last)."""
    part = next(parts, None)
    if part is None:
        return None
    return int(part.rows.shape[0]), part.entries, encode_rows(part)


async def delete_snapshot(client: RedisClient, keys: RedisKeys, version: int) -> None:
    """Delete a snapshot: its header first (no reader starts on it), then its parts.

    Parts are numbered from 0 without gaps, so deleting stops at the first one missing.
    """
    if version < 1:
        return
    await client.delete(keys.model_snapshot(version))
    part = 0
    while await client.delete(keys.model_snapshot_rows(version, part)):
        part += 1


async def read_latest_snapshot(
    client: RedisClient, keys: RedisKeys, *, rows: bool = True
) -> tuple[dict[str, Any] | None, int]:
    """The newest complete snapshot document and its version (``None, 0`` when there is none).

    ``rows=False`` reads only the header (the catalogue and statistics: what the API
    needs), leaving a format-5 ``cooc.rows`` as its part summary. A snapshot whose parts
    are missing (deleted by a writer three snapshots later while this read ran, or lost)
    is skipped for the previous one still kept.
    """
    raw_version: Any = await client.get(keys.model_snapshot_latest)
    if raw_version is None:
        return None, 0
    latest = int(raw_version)
    for version in range(latest, max(0, latest - _KEEP_SNAPSHOTS), -1):
        header: Any = await client.get(keys.model_snapshot(version))
        if header is None:
            continue
        doc = decode_snapshot(header)
        summary = snapshot_parts(doc)
        if not rows or summary is None:
            return doc, version
        blobs: list[bytes] = []
        for part in range(summary["parts"]):
            blob: Any = await client.get(keys.model_snapshot_rows(version, part))
            if blob is None:
                break
            blobs.append(blob)
        if len(blobs) == summary["parts"]:
            return decode_snapshot(header, blobs), version
        log.warning("model snapshot version=%d lacks parts; reading an older one", version)
    return None, 0
