"""The producer and list-reader examples in ``examples/`` work against the real stack.

For each language (Python/confluent-kafka, Go/kafka-go, Node/kafkajs, curl over the HTTP
API) a fresh user's events and control go through the example producer; the test checks
that every record landed on the partition recloop expects (Kafka's murmur2 of the user id,
:func:`pipeline.kafka.partitioning.partition_for`), both where the client says and where the
broker holds it; that the worker applied the control and published a list for the user,
on that same partition of the recommendations topic; and that the example reader gets that
list from the topic and from ``GET /v1/users/{id}/recommendations``.

Go modules and npm packages are fetched from their registries on the first run (then
cached by the toolchains), which is why this module has a long timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from pipeline.config import Settings
from pipeline.kafka.partitioning import partition_for
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.probes import free_port
from pipeline.tooling.processes import TopicReader, WorkerProcess, wait_for
from pipeline.tooling.serve_process import ServeProcess

pytestmark = pytest.mark.timeout(900)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PARTITIONS = 8
ITEMS = ["comedy-1", "comedy-2", "drama-1"]
BUILD_TIMEOUT = 600


class Stack:
    """One worker and one serve process on their own topics, plus what the tests read."""

    def __init__(self, settings: Settings, worker: WorkerProcess, serve: ServeProcess) -> None:
        self.settings = settings
        self.worker = worker
        self.serve = serve
        self.redis = redis.Redis.from_url(settings.redis_url)
        self.keys = RedisKeys(settings.redis_namespace)

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.settings.to_env(), "RECLOOP_API_URL": self.serve.base_url}

    def run(self, cmd: list[str], cwd: Path, timeout: float = 120) -> list[dict[str, Any]]:
        """Run an example; its stdout as JSON lines (fails with its output otherwise)."""
        done = subprocess.run(
            cmd, cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, (
            f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
        return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def close(self) -> None:
        self.redis.close()


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    uid = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        redis_url=redis_url,
        app_id=f"recloop-ex-{uid}",
        topic_events=f"ex{uid}.events",
        topic_items=f"ex{uid}.items",
        topic_dlq=f"ex{uid}.events.dlq",
        topic_recommendations=f"ex{uid}.recommendations",
        topic_controls=f"ex{uid}.controls",
        topic_partitions=PARTITIONS,
        redis_namespace=f"ex{uid}",
        web_port=free_port(),
        api_port=free_port(),
    )
    ensure_topics(settings)
    with EventProducer(settings) as producer:
        for n in range(10):
            for category in ("Comedy", "Drama"):
                producer.item(f"{category.lower()}-{n}", [category], duration_seconds=600.0)
    logs = tmp_path_factory.mktemp("examples-logs")
    worker = WorkerProcess(settings, log_path=logs / "worker.log").wait_ready(90)
    serve = ServeProcess(settings, log_path=logs / "serve.log").wait_healthy(30)
    found = Stack(settings, worker, serve)
    try:
        yield found
    finally:
        found.close()
        serve.stop()
        worker.stop()


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is needed for the examples' tests (`make setup` installs it)"
    return path


@pytest.fixture(scope="module")
def go_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go examples, built (modules fetched through the Go module proxy when missing)."""
    out = tmp_path_factory.mktemp("go-bin")
    done = subprocess.run(
        [_tool("go"), "build", "-o", str(out), "./..."],
        cwd=EXAMPLES / "go",
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def node_ready() -> Path:
    """The Node examples with their locked packages installed from the npm registry."""
    cwd = EXAMPLES / "node"
    done = subprocess.run(
        [_tool("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return cwd


def produce(lang: str, stack: Stack, user: str, request: pytest.FixtureRequest) -> list[Any]:
    """Run the language's producer example; the records it reports as acknowledged."""
    if lang == "python":
        return stack.run([sys.executable, "produce.py", user, *ITEMS], EXAMPLES / "python")
    if lang == "go":
        binary = request.getfixturevalue("go_bin") / "produce"
        return stack.run([str(binary), user, *ITEMS], EXAMPLES / "go")
    if lang == "node":
        cwd = request.getfixturevalue("node_ready")
        return stack.run([_tool("node"), "produce.mjs", user, *ITEMS], cwd)
    answers = stack.run(["sh", "events.sh", user, *ITEMS], EXAMPLES / "curl")
    assert [a.get("accepted") for a in answers[:2]] == [len(ITEMS), 1]
    assert answers[2]["user_id"] == user  # the list read back (trending until the worker's)
    return []


def read_lists(lang: str, stack: Stack, user: str, request: pytest.FixtureRequest) -> list[Any]:
    """Run the language's list reader: the list from the topic, then from the HTTP API."""
    if lang == "go":
        binary = request.getfixturevalue("go_bin") / "readlists"
        return stack.run([str(binary), user], EXAMPLES / "go")
    if lang == "node":
        cwd = request.getfixturevalue("node_ready")
        return stack.run([_tool("node"), "read-lists.mjs", user], cwd)
    return stack.run([sys.executable, "read_lists.py", user], EXAMPLES / "python")


def keyed(reader: TopicReader, user: str, count: int) -> list[Any]:
    reader.until(lambda rs: sum(r.key == user.encode() for r in rs) >= count, timeout=30)
    return [r for r in reader.records if r.key == user.encode()]


@pytest.mark.e2e
@pytest.mark.parametrize("lang", ["python", "go", "node", "curl"])
def test_example_lands_on_the_users_partition_and_gets_a_list(
    lang: str, stack: Stack, request: pytest.FixtureRequest
) -> None:
    s = stack.settings
    user = f"{lang}-{uuid.uuid4().hex[:10]}"
    expected = partition_for(user, PARTITIONS)
    reported = produce(lang, stack, user, request)
    if lang != "curl":  # where the client says the broker acknowledged each record
        # (acknowledgements of different topics may come in any order)
        assert sorted((r["topic"], r["key"]) for r in reported) == sorted(
            [*[(s.topic_events, user)] * len(ITEMS), (s.topic_controls, user)]
        )
        assert {r["partition"] for r in reported} == {expected}, reported

    # where the broker holds them
    events = TopicReader(s, s.topic_events)
    controls = TopicReader(s, s.topic_controls)
    lists = TopicReader(s, s.topic_recommendations)
    try:
        assert {r.partition for r in keyed(events, user, len(ITEMS))} == {expected}
        assert {r.partition for r in keyed(controls, user, 1)} == {expected}
        # the control reached the worker that owns the user's events (co-partitioning)
        assert wait_for(
            lambda: (
                b"Comedy"
                in (stack.redis.hget(stack.keys.controls(user), "declared_interests") or b"")
            ),
            timeout=30,
        ), stack.worker.tail()
        # the worker's list for the user, on the same partition number (Faust's producer)
        published = keyed(lists, user, 1)
        assert published and {r.partition for r in published} == {expected}
    finally:
        for reader in (events, controls, lists):
            reader.close()

    from_topic, from_api = read_lists(lang, stack, user, request)
    assert from_topic["user_id"] == user and from_topic["schema_version"] == 1
    assert from_topic["model_version"] != "trending"  # the worker's list, not a fallback
    assert from_api["user_id"] == user and from_api["items"]
