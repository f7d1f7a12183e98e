"""How a worker's models stay in step with the others': the model log and snapshots.

Every batch's learn records and catalogue items go into the Redis stream
``recloop:model:log`` in the batch's transaction (``pipeline.stores.batch``); every
``model_sync_seconds`` each worker applies the entries of the others, so a worker's models
lag the whole traffic by at most that interval (plus one batch). Every
``model_snapshot_seconds`` one worker writes a versioned snapshot with the log position it
includes; a starting worker loads the newest snapshot and replays the log after it.
"""

from __future__ import annotations

import asyncio
import time

from pipeline.clock import Clock
from pipeline.model.catalog import item_info
from pipeline.model.models import ModelParams, SharedModels
from pipeline.model.snapshot import arena_buffers, freeze, models_from_dict
from pipeline.stores.model_log import ModelLog
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.retry import retry_forever


class ModelSharing:
    """One worker's side of the shared model (log reader, snapshot writer)."""

    def __init__(
        self, log: ModelLog, *, params: ModelParams, clock: Clock, metrics: WorkerMetrics
    ) -> None:
        self.log = log
        self.params = params
        self.clock = clock
        self.metrics = metrics
        self.version = 0

    def list_version(self, models: SharedModels) -> str:
        """What lists carry as ``model_version``: snapshot version and records applied."""
        return f"knn/{self.version}.{models.records_applied}"

    def _count(self, _: BaseException) -> None:
        self.metrics.redis_errors.inc()

    async def load(self) -> SharedModels:
        """Models from the newest snapshot (fresh ones when there is none)."""
        doc, version = await retry_forever(
            self.log.load_latest, what="model snapshot load", on_error=self._count
        )
        self.version = version
        self.metrics.model_version.set(version)
        return SharedModels(self.params) if doc is None else models_from_dict(doc, self.params)

    async def sync(self, models: SharedModels) -> bool:
        """Apply the records and items other workers appended; whether items changed."""
        records, items = await retry_forever(
            self.log.read_new, what="model log read", on_error=self._count
        )
        for item in items:
            models.upsert_item(item_info(item))
        fresh, refused = [], 0
        for record, where in records:
            if record is None:  # this worker's own entry: applied already, marks its place
                if where is not None:
                    models.admit(*where)
            elif where is None or models.admit(*where):
                fresh.append(record)
            else:
                refused += 1
        applied = models.apply_all(fresh)
        self.metrics.model_records.labels("peer").inc(applied)
        self.metrics.model_records.labels("replayed").inc(refused)
        return bool(items)

    async def snapshot(self, models: SharedModels, *, lock_seconds: float) -> None:
        """Write a snapshot unless another worker just did: lock, sync, copy, write.

        Only the copy (``freeze``: arrays, no object per pair) runs on the event loop, into
        memory touched beforehand in a thread (``arena_buffers``); the document and its
        parts are built from the copy in a thread while batches go on.
        """
        if not await self.log.lock_snapshot(lock_seconds):
            return
        buffers = await asyncio.to_thread(arena_buffers, models)  # page faults off the loop
        await self.sync(models)
        # no await between the sync above and the copy: it holds exactly the log up to the
        # position the snapshot records
        started = time.perf_counter()
        frozen, log_id = freeze(models, buffers), self.log.last_id
        self.metrics.snapshot_seconds.labels("copy").observe(time.perf_counter() - started)
        started = time.perf_counter()
        written = await self.log.write_snapshot(frozen, log_id=log_id, now_ms=self.clock.now_ms())
        self.metrics.snapshot_seconds.labels("write").observe(time.perf_counter() - started)
        self.metrics.snapshot_bytes.set(written.bytes)
        self.version = written.version
        self.metrics.model_version.set(written.version)
