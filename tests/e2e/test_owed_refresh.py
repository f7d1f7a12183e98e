"""A worker killed between committing an event and writing its list: the list still follows.

Worker A coalesces a user's second event into a deferred refresh (interval 5 s) and is
SIGKILLed before it runs: the event's offset is committed and its effects are in Redis, so
no worker will ever see it again. Worker B (started after the kill) must still publish the
list that reflects it, from the owed-refresh record (``pipeline.stores.owed``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.config import Settings
from pipeline.kafka.partitioning import key_partitioner
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.client import sync_redis
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import WorkerProcess, wait_for

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def env(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[dict[str, Any]]:
    def make() -> Settings:  # one group, topics and namespace; a web port each
        return settings_factory(
            topic_partitions=2, refresh_interval_ms=5_000, refresh_rescue_after_seconds=2.0
        )

    settings = make()
    ensure_topics(settings)
    with EventProducer(settings) as producer:
        for n in range(20):
            producer.item(f"item-{n}", ["Drama" if n % 2 else "Comedy"], duration_seconds=600.0)
        producer.flush()
    client = sync_redis(settings.redis_url)
    workers: list[WorkerProcess] = []
    yield {"settings": settings, "make": make, "redis": client, "workers": workers,
           "keys": RedisKeys(settings.redis_namespace), "tmp": tmp_path}  # fmt: skip
    for w in workers:
        w.stop()
    client.close()


def start(env: dict[str, Any], name: str) -> WorkerProcess:
    worker = WorkerProcess(env["make"](), log_path=env["tmp"] / f"{name}.log").wait_ready(90)
    env["workers"].append(worker)
    return worker


def list_trigger(env: dict[str, Any], user: str) -> str | None:
    raw = env["redis"].get(env["keys"].recs(user))
    return None if raw is None else orjson.loads(raw)["trigger_event_id"]


def test_refresh_owed_by_a_killed_worker_is_done_by_another(env: dict[str, Any]) -> None:
    keys: RedisKeys = env["keys"]
    user = f"owed-{uuid.uuid4().hex[:6]}"
    a = start(env, "a")
    with EventProducer(env["settings"]) as producer:
        first = producer.watch(user, "item-1", 500.0, duration_seconds=600.0)
        producer.flush()
        assert wait_for(lambda: list_trigger(env, user) == first, timeout=60)
        second = producer.click(user, "item-2")  # within 5 s of the refresh: deferred
        producer.flush()
    assert wait_for(
        lambda: (env["redis"].hget(keys.meta(user), "owed") or b"").startswith(second.encode()),
        timeout=30,
        interval=0.02,
    ), "the second event was not recorded as owing a refresh"
    a.kill()  # its deferred refresh dies with it; the event's offset is already committed
    assert list_trigger(env, user) == first, "precondition: the refresh was still deferred"

    b = start(env, "b")
    assert wait_for(lambda: list_trigger(env, user) == second, timeout=60), (
        f"the list never reflected the last event; worker b:\n{b.tail()}"
    )
    assert env["redis"].hget(keys.meta(user), "owed") is None  # settled
    partition = key_partitioner(env["settings"].topic_partitions)(user)
    assert env["redis"].zcard(keys.owed(partition)) == 0  # and out of the rescue index
    rescued = [
        line for line in b.metrics().splitlines()
        if line.startswith("recloop_lists_published_total") and 'trigger="rescued"' in line
    ]  # fmt: skip
    assert rescued and float(rescued[0].rsplit(" ", 1)[1]) >= 1, rescued
