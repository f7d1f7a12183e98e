"""A real worker and a ``recloop serve`` process per kind of Redis for the API tests.

The stack is the integration tests' (real Kafka and Redis, see ``tests/conftest.py``) with
its own topics and key namespace. ``api`` runs each API test on a single Redis and on a
Redis Cluster; the browser and fuzz tests use the single one (``single_api``). Lists are
short (6 items, at most 3 per category, no exploration) so that a category entering or
leaving a list is plain to see.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.kafka.partitioning import key_partitioner
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.client import sync_redis
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.probes import free_port
from pipeline.tooling.processes import WorkerProcess, wait_for
from pipeline.tooling.serve_process import ServeProcess
from tests.conftest import REDIS_KINDS, redis_url_of

CATEGORIES = ["Comedy", "Drama", "Documentary", "Music", "Sports", "Kids"]
ITEMS_PER_CATEGORY = 12
MAX_BATCH = 50
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"

EXPERIMENTS = {
    "experiments": [
        {
            "name": "apitest",
            "variants": [
                {"name": "control", "share": 0.5, "changes": {}},
                {"name": "treatment", "share": 0.5, "changes": {"category_weight": 0.03}},
            ],
        }
    ]
}


def item_id(category: str, n: int) -> str:
    return f"{category.lower()}-{n}"


def category_of(item: str) -> str:
    return next((c for c in CATEGORIES if item.startswith(c.lower() + "-")), "?")


class Api:
    """What a test needs: settings, an HTTP client on the serve process, Redis, keys."""

    def __init__(self, settings: Settings, serve: ServeProcess, worker: WorkerProcess) -> None:
        self.settings = settings
        self.serve = serve
        self.worker = worker
        self.http = httpx.Client(base_url=serve.base_url, timeout=30)
        self.redis = sync_redis(settings.redis_url)
        self.keys = RedisKeys(settings.redis_namespace)
        self.partition = key_partitioner(settings.topic_partitions)

    def recs(self, user_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.keys.recs(user_id))
        return None if raw is None else orjson.loads(raw)

    def listed(self, user_id: str) -> list[str]:
        return [e["item_id"] for e in (self.recs(user_id) or {}).get("items", [])]

    def reflects(self, user_id: str, trigger: str) -> bool:
        return (self.recs(user_id) or {}).get("trigger_event_id") == trigger

    def watch(self, user_id: str, item: str, **extra: Any) -> str:
        """Send a full watch through the API; returns its event id."""
        event = {"type": "watch", "user_id": user_id, "item_id": item,
                 "watch_seconds": 600.0, "duration_seconds": 600.0, **extra}  # fmt: skip
        resp = self.http.post("/v1/events", json=event)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["ids"][0])

    def user_with_taste(self, category: str, n: int = 4) -> str:
        """A new user who fully watched ``n`` items of ``category``, with a list reflecting it."""
        user = f"u-{uuid.uuid4().hex[:8]}"
        last = ""
        for k in range(n):
            last = self.watch(user, item_id(category, k))
        assert wait_for(lambda: self.reflects(user, last), timeout=30), self.worker.tail()
        return user

    def close(self) -> None:
        self.http.close()
        self.redis.close()


@pytest.fixture(scope="session")
def api_settings_factory(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    uid = uuid.uuid4().hex[:8]
    experiments = tmp_path_factory.mktemp("api-exp") / "experiments.json"
    experiments.write_bytes(orjson.dumps(EXPERIMENTS))

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "experiments_file": experiments,
            "kafka_bootstrap": kafka_bootstrap,
            "redis_url": redis_url,
            "redis_namespace": f"api{uid}",
            "app_id": f"recloop-api-{uid}",
            "topic_events": f"api{uid}.events",
            "topic_items": f"api{uid}.items",
            "topic_dlq": f"api{uid}.events.dlq",
            "topic_recommendations": f"api{uid}.recommendations",
            "topic_controls": f"api{uid}.controls",
            "topic_partitions": 4,
            "list_size": 6,
            "category_cap": 3,
            "exploration_share": 0.0,
            "trending_sync_seconds": 0.5,
            "api_max_batch": MAX_BATCH,
            "data_dir": tmp_path_factory.mktemp("api-data"),
        }
        values.update(overrides)
        return Settings(**values)

    return make


def start_api(settings: Settings, logs: Path) -> Api:
    """A worker and a serve process (no API key: loopback) sharing one stack."""
    ensure_topics(settings)
    now = int(time.time() * 1000)
    with EventProducer(settings) as producer:
        for category in CATEGORIES:
            for n in range(ITEMS_PER_CATEGORY):
                producer.item(
                    item_id(category, n),
                    [category],
                    duration_seconds=600.0,
                    published_ts=now - (n + 1) * 3_600_000,
                    title=f"{category} #{n}",
                    creator_id=f"creator-{n % 3}",
                )
        producer.flush()
    worker = WorkerProcess(settings, log_path=logs / "worker.log").wait_ready(90)
    serve = ServeProcess(settings, log_path=logs / "serve.log").wait_healthy(30)
    client = Api(settings, serve, worker)
    assert wait_for(lambda: client.http.get("/ready").status_code == 200, timeout=30)
    return client


@pytest.fixture(scope="session")
def api_pool(
    request: pytest.FixtureRequest,
    api_settings_factory: Callable[..., Settings],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], Api]]:
    """``get(kind) -> Api``: started on first use (own topics, group and keys per kind)."""
    started: dict[str, Api] = {}

    def get(kind: str) -> Api:
        if kind not in started:
            base = api_settings_factory()
            tag = "c" if kind == "redis-cluster" else "s"
            web_port = free_port()
            settings = api_settings_factory(
                redis_url=redis_url_of(request, kind),
                redis_namespace=f"{base.redis_namespace}{tag}",
                app_id=f"{base.app_id}-{tag}",
                topic_events=f"{base.topic_events}.{tag}",
                topic_items=f"{base.topic_items}.{tag}",
                topic_dlq=f"{base.topic_dlq}.{tag}",
                topic_recommendations=f"{base.topic_recommendations}.{tag}",
                topic_controls=f"{base.topic_controls}.{tag}",
                web_port=web_port,
                api_port=free_port(),
                api_worker_metrics_urls=f"http://127.0.0.1:{web_port}/metrics",
            )
            started[kind] = start_api(settings, tmp_path_factory.mktemp(f"api-logs-{tag}"))
        return started[kind]

    try:
        yield get
    finally:
        for client in started.values():
            client.close()
            client.serve.stop()
            client.worker.stop()


@pytest.fixture(scope="session", params=REDIS_KINDS)
def api(request: pytest.FixtureRequest, api_pool: Callable[[str], Api]) -> Api:
    """The API on a single Redis, then on a Redis Cluster."""
    return api_pool(request.param)


@pytest.fixture(scope="session")
def single_api(api_pool: Callable[[str], Api]) -> Api:
    """The API on the single Redis (browser and fuzz tests)."""
    return api_pool("redis")


READ_KEY = "read-secret"
ADMIN_KEY = "admin-secret"


@pytest.fixture(scope="session")
def keyed(single_api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A second serve process on the same stack with both keys and a CORS allow-list."""
    settings = single_api.settings.model_copy(update={
        "api_port": free_port(),
        "api_read_key": SecretStr(READ_KEY),
        "api_admin_key": SecretStr(ADMIN_KEY),
        "api_cors_origins": "https://console.example",
    })  # fmt: skip
    serve = ServeProcess(settings, log_path=tmp_path_factory.mktemp("keyed") / "serve.log")
    yield serve.wait_healthy(30)
    serve.stop()
