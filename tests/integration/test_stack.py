"""The local stack really starts, serves Kafka and Redis, and stops what it started."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.tooling.probes import free_ports, kafka_ready
from pipeline.tooling.stack import LocalStack

pytestmark = pytest.mark.integration


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def stack(tmp_path: Path, kafka_jar_cache: Path) -> Iterator[LocalStack]:
    kafka_port, controller_port, redis_port = free_ports(3)
    local = LocalStack(
        tmp_path / "stack",
        kafka_port=kafka_port,
        controller_port=controller_port,
        redis_port=redis_port,
        jar_cache=kafka_jar_cache,
    )
    yield local
    local.stop()  # in case an assertion failed half-way


def test_up_serve_down(stack: LocalStack) -> None:
    status = stack.start()
    assert status.all_up
    assert status.kafka.pid and status.redis.pid
    pids = (status.kafka.pid, status.redis.pid)
    # a second start is a no-op on running services
    assert stack.start_kafka() is False
    assert stack.start_redis() is False

    topic = f"stack-test-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    producer.produce(topic, b"hello")
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka_bootstrap,
            "group.id": topic,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    record = None
    while record is None and time.monotonic() < deadline:
        record = consumer.poll(1.0)
    consumer.close()
    assert record is not None and record.error() is None
    assert record.value() == b"hello"

    client = redis.Redis.from_url(stack.redis_url)
    assert client.ping() is True
    client.close()

    assert sorted(stack.stop()) == ["kafka", "redis"]
    status = stack.status()
    assert not status.kafka.up and not status.redis.up
    assert status.kafka.pid is None and status.redis.pid is None
    assert all(_gone(pid) for pid in pids)
    assert not list(stack.stack_dir.rglob("*.pid"))
    assert stack.stop() == []


def test_stop_ignores_a_stale_pid_file(stack: LocalStack) -> None:
    # our own pid is alive but is not redis-server: stop must not signal it
    stack.redis_dir.mkdir(parents=True)
    (stack.redis_dir / "redis.pid").write_text(f"{os.getpid()}\n")
    assert stack.status().redis.pid is None
    assert stack.stop() == []
    assert not (stack.redis_dir / "redis.pid").exists()


def test_cli_status_of_a_down_stack_exits_1(tmp_path: Path) -> None:
    kafka_port, controller_port, redis_port = free_ports(3)
    args = ["stack", "status", "--dir", str(tmp_path)]
    args += ["--kafka-port", str(kafka_port), "--controller-port", str(controller_port)]
    args += ["--redis-port", str(redis_port)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert f"kafka: 127.0.0.1:{kafka_port} down" in result.output
    assert f"redis: redis://127.0.0.1:{redis_port}/0 down" in result.output


def test_session_fixtures_wire_live_services(
    settings_factory: Callable[..., Settings], redis_client: redis.Redis, kafka_bootstrap: str
) -> None:
    first, second = settings_factory(), settings_factory(list_size=5)
    # one test: same topics and group, distinct web ports; overrides apply
    assert first.topic_events == second.topic_events != Settings().topic_events
    assert first.app_id == second.app_id
    assert first.redis_namespace == second.redis_namespace != Settings().redis_namespace
    assert first.web_port != second.web_port
    assert second.list_size == 5
    assert first.kafka_bootstrap == kafka_bootstrap
    key = f"stack-test:{uuid.uuid4().hex}"
    redis_client.set(key, b"1", ex=60)
    assert redis_client.get(key) == b"1"
    assert kafka_ready(first.kafka_bootstrap)


def test_settings_factory_starts_nothing_when_given_addresses(
    settings_factory: Callable[..., Settings],
) -> None:
    # no service is started when the test supplies both addresses itself
    made = settings_factory(kafka_bootstrap="127.0.0.1:1", redis_url="redis://127.0.0.1:1/0")
    assert made.kafka_bootstrap == "127.0.0.1:1"
    assert made.topic_events.startswith("t") and made.topic_events.endswith(".events")
