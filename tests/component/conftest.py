"""The component level: one worker composed in-process around a real Redis.

Everything is the production composition (``pipeline.worker.runtime.start_worker``: real
stores, Lua scripts, publisher, refresher) except the two things a test must control: the
clock is a ``ManualClock`` and Kafka sends go to a ``RecordingSender``. No broker is needed.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.clock import ManualClock
from pipeline.config import Settings
from pipeline.events.ingest import RawMessage
from pipeline.kafka.partitioning import key_partitioner
from pipeline.stores.client import RedisClient, open_redis
from pipeline.tooling.testing import RecordingSender
from pipeline.worker.runtime import Worker, start_worker
from tests.conftest import REDIS_KINDS, redis_url_of

T0 = 1_700_000_000_000


class Harness:
    """A started worker plus what a test inspects: sender, clock, Redis."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = ManualClock(T0)
        self.sender = RecordingSender()
        self.offsets = itertools.count()
        self.partition_of = key_partitioner(settings.topic_partitions)
        self._redis: RedisClient | None = None
        self._worker: Worker | None = None

    @property
    def redis(self) -> RedisClient:
        assert self._redis is not None, "use `async with harness:`"
        return self._redis

    @property
    def worker(self) -> Worker:
        assert self._worker is not None, "use `async with harness:`"
        return self._worker

    async def __aenter__(self) -> Harness:
        """Connect (on this event loop) and start a worker."""
        self._redis = await open_redis(self.settings)
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.redis.aclose()
        self._redis = self._worker = None

    async def start(self) -> Worker:
        """Start a (new) worker on the same Redis, clock and sender: a restart."""
        self._worker = await start_worker(
            self.settings,
            redis=self.redis,
            sender=self.sender,
            worker_id=f"component-{uuid.uuid4().hex[:6]}",
            clock=self.clock,
        )
        return self._worker

    def raw(
        self, doc: dict[str, Any] | bytes, topic: str | None = None, partition: int | None = None
    ) -> RawMessage:
        """A consumed record; on its key's partition unless ``partition`` says otherwise."""
        value = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        if partition is None:
            key = doc.get("user_id") or doc.get("item_id") if isinstance(doc, dict) else None
            partition = self.partition_of(str(key)) if key else 0
        return RawMessage(value, topic or self.settings.topic_events, partition, next(self.offsets))

    def event(self, user: str, item: str, *, kind: str = "watch", **fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "event_id": fields.pop("event_id", uuid.uuid4().hex),
            "type": kind,
            "user_id": user,
            "item_id": item,
            "ts": fields.pop("ts", self.clock.now_ms()),
            **fields,
        }
        if kind == "watch":
            doc.setdefault("watch_seconds", 600.0)
            doc.setdefault("duration_seconds", 600.0)
        return doc

    async def events(self, *docs: dict[str, Any] | bytes) -> None:
        await self.worker.processor.handle_events([self.raw(d) for d in docs])

    def lists(self, user: str | None = None) -> list[dict[str, Any]]:
        docs = self.sender.values(self.settings.topic_recommendations)
        return [d for d in docs if user is None or d["user_id"] == user]

    def key(self, kind: str, user: str) -> str:
        return f"{self.settings.redis_namespace}:user:{{{user}}}:{kind}"


@pytest.fixture(params=REDIS_KINDS)
def harness_factory(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]
) -> Callable[..., Harness]:
    """``make(**settings) -> Harness`` on a single Redis and on a Redis Cluster (no broker).

    Harnesses made in one test share the test's key namespace: several workers, one Redis.
    """
    url = redis_url_of(request, request.param)

    def make(**overrides: Any) -> Harness:
        return Harness(settings_factory(kafka_bootstrap="127.0.0.1:1", redis_url=url, **overrides))

    return make


@pytest.fixture
def harness(harness_factory: Callable[..., Harness]) -> Harness:
    """A harness on a single Redis and on a Redis Cluster (no broker: sends are recorded)."""
    return harness_factory()


# an experiment with an arm whose lists read the P(like) ranker: its worker trains it
LIKE_RANKER_ARM = {
    "experiments": [
        {
            "name": "like-ranker",
            "variants": [
                {"name": "control", "share": 0.5},
                {"name": "liked", "share": 0.5, "changes": {"ranker_power": 1.0}},
            ],
        }
    ]
}


@pytest.fixture
def like_ranker_harness(harness_factory: Callable[..., Harness], tmp_path: Path) -> Harness:
    """``harness`` with ``LIKE_RANKER_ARM`` declared (the worker trains every model)."""
    experiments = tmp_path / "like-ranker.json"
    experiments.write_bytes(orjson.dumps(LIKE_RANKER_ARM))
    return harness_factory(experiments_file=experiments)


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run one scenario on a fresh event loop."""
    asyncio.run(coro)
