"""A worker process per test module on the session's real Kafka and Redis (single, cluster)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from pipeline.config import Settings
from pipeline.kafka.partitioning import key_partitioner
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.client import sync_redis
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.probes import free_port
from pipeline.tooling.processes import WorkerProcess
from tests.conftest import REDIS_KINDS, redis_url_of

CATEGORIES = ["Comedy", "Drama", "Documentary", "Music", "Sports", "Kids"]
ITEMS_PER_CATEGORY = 15


# Both arms rank alike (category_cap 6 is the default), so other tests are unaffected while
# assignment and outcome attribution run for every user.
EXPERIMENTS = {
    "experiments": [
        {
            "name": "itest",
            "variants": [
                {"name": "a", "share": 0.5, "changes": {}},
                {"name": "b", "share": 0.5, "changes": {"category_cap": 6}},
            ],
        }
    ]
}


def item_id(category: str, n: int) -> str:
    return f"{category.lower()}-{n}"


@pytest.fixture(scope="module", params=REDIS_KINDS)
def stack(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One worker, on a single Redis and (a second run of the module) on a Redis Cluster."""
    redis_url = redis_url_of(request, request.param)
    uid = uuid.uuid4().hex[:8]
    experiments = tmp_path_factory.mktemp("exp") / "experiments.json"
    experiments.write_bytes(orjson.dumps(EXPERIMENTS))
    settings = Settings(
        experiments_file=experiments,
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        redis_namespace=f"t{uid}",
        app_id=f"recloop-it-{uid}",
        topic_events=f"it{uid}.events",
        topic_items=f"it{uid}.items",
        topic_dlq=f"it{uid}.events.dlq",
        topic_recommendations=f"it{uid}.recommendations",
        topic_controls=f"it{uid}.controls",
        web_port=free_port(),
        topic_partitions=4,
        data_dir=tmp_path_factory.mktemp("it-data"),
    )
    ensure_topics(settings)
    now = int(time.time() * 1000)
    with EventProducer(settings) as producer:
        for category in CATEGORIES:
            for n in range(ITEMS_PER_CATEGORY):
                producer.item(
                    item_id(category, n),
                    [category],
                    duration_seconds=600.0,
                    published_ts=now - n * 3_600_000,
                    title=f"{category} #{n}",
                    creator_id=f"creator-{n % 3}",
                )
        producer.flush()
    log_dir = tmp_path_factory.mktemp("worker")
    worker = WorkerProcess(settings, log_path=log_dir / "worker.log").wait_ready(90)
    client = sync_redis(redis_url)
    yield {
        "settings": settings,
        "worker": worker,
        "redis": client,
        "keys": RedisKeys(settings.redis_namespace),
        "partition": key_partitioner(settings.topic_partitions),
    }
    worker.stop()
    client.close()


def features(stack: dict[str, Any], user_id: str) -> dict[str, str]:
    raw = stack["redis"].hgetall(stack["keys"].features(user_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def recs(stack: dict[str, Any], user_id: str) -> dict[str, Any] | None:
    raw = stack["redis"].get(stack["keys"].recs(user_id))
    return None if raw is None else orjson.loads(raw)


def counts(stack: dict[str, Any], user_id: str) -> tuple[int, int, int]:
    f = features(stack, user_id)
    return int(f.get("n_click", 0)), int(f.get("n_skip", 0)), int(f.get("n_watch", 0))


def arm_counter(stack: dict[str, Any], name: str, arm: str, counter: str) -> int:
    """An experiment arm's counter, summed over the partitions."""
    keys: RedisKeys = stack["keys"]
    return sum(
        int(stack["redis"].hget(keys.experiment(p, name, arm), counter) or 0)
        for p in range(stack["settings"].topic_partitions)
    )
