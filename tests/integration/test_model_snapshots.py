"""Model snapshots in parts (format 5) through a real Redis and a Redis Cluster.

A worker writes the header and the neighbour parts (each a key of its own, any hash slot),
another loads them back; old versions go with all their parts; a snapshot missing a part
is passed over for the previous one; ``latest`` never moves back; the API's catalogue reads
the header alone.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import numpy as np
import pytest

from pipeline.clock import ManualClock
from pipeline.model.models import ModelParams, SharedModels
from pipeline.model.record import LearnRecord
from pipeline.stores import model_log
from pipeline.stores.client import RedisClient, client_for
from pipeline.stores.keys import RedisKeys
from pipeline.stores.model_log import ModelLog, read_latest_snapshot
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.sharing import ModelSharing
from tests.conftest import REDIS_KINDS, redis_url_of

T0 = 1_700_000_000_000
PARAMS = ModelParams()


def _learn(models: SharedModels, n_events: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for k in range(n_events):
        item = f"i{int(rng.zipf(1.3)) % 300}"
        context = tuple((f"i{int(j)}", 1.0) for j in rng.integers(0, 300, size=6))
        models.apply(
            LearnRecord(item, T0 + k * 1_000, "watch", 1.0, 1.0, (), context, positive=True)
        )


def _pairs(models: SharedModels) -> set[tuple[str, str, float]]:
    ids = models.catalog.ids
    return {(ids[i], ids[j], w) for i, j, w in models.cooc.pairs()}


def _sharing(client: RedisClient, keys: RedisKeys, worker: str) -> ModelSharing:
    log = ModelLog(client, keys=keys, worker_id=worker, retention_seconds=600)
    return ModelSharing(log, params=PARAMS, clock=ManualClock(T0), metrics=WorkerMetrics())


async def _exists(client: RedisClient, key: str) -> bool:
    found: Any = await client.exists(key)
    return bool(found)


@pytest.mark.parametrize("kind", REDIS_KINDS)
def test_snapshots_in_parts_load_back_and_old_versions_go(
    request: pytest.FixtureRequest, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = redis_url_of(request, kind)
    keys = RedisKeys(f"s{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(model_log, "PART_ENTRIES", 500)  # many parts from a small model

    async def run() -> None:
        client = client_for(url, cluster=kind == "redis-cluster")
        try:
            writer, other = _sharing(client, keys, "w1"), _sharing(client, keys, "w2")
            models = SharedModels(PARAMS)
            _learn(models, 2_000, seed=1)
            await writer.snapshot(models, lock_seconds=30)
            assert writer.version == 1
            await other.snapshot(models, lock_seconds=30)  # the lock is held: no write
            assert other.version == 0 and not await _exists(client, keys.model_snapshot(2))
            parts = 0
            while await _exists(client, keys.model_snapshot_rows(1, parts)):
                parts += 1
            assert parts > 5
            loaded = await _sharing(client, keys, "w3").load()
            assert _pairs(loaded) == _pairs(models) and len(_pairs(models)) > parts * 400
            assert loaded.catalog.ids == models.catalog.ids
            assert loaded.records_applied == models.records_applied

            for version in (2, 3, 4):
                await client.delete(keys.model_snapshot_lock)
                _learn(models, 300, seed=version)
                await writer.snapshot(models, lock_seconds=30)
                assert writer.version == version
            assert not await _exists(client, keys.model_snapshot(1))
            assert not any(
                [await _exists(client, keys.model_snapshot_rows(1, p)) for p in range(parts)]
            )
            assert await _exists(client, keys.model_snapshot(2))

            header_only, version = await read_latest_snapshot(client, keys, rows=False)
            assert version == 4 and set(header_only["cooc"]["rows"]) == {
                "parts", "rows", "entries"
            }  # fmt: skip
            await client.delete(keys.model_snapshot_rows(4, 1))  # a part lost
            doc, version = await read_latest_snapshot(client, keys)
            assert version == 3 and doc is not None  # the previous complete one
            assert doc["cooc"]["rows"].entries == doc["cooc"]["rows"].lengths.sum() > 0

            await client.set(keys.model_snapshot_latest, 10)  # a later writer finished first
            await client.delete(keys.model_snapshot_lock)
            await writer.snapshot(models, lock_seconds=30)
            assert writer.version == 5 and await client.get(keys.model_snapshot_latest) == b"10"
        finally:
            await client.aclose()

    asyncio.run(run())
