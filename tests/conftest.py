"""Session-wide real services for the integration and e2e tests, and per-test settings.

Kafka and Redis are found in this order, each on its own:

1. ``RECLOOP_KAFKA_BOOTSTRAP`` / ``RECLOOP_REDIS_URL`` / ``RECLOOP_TEST_REDIS_CLUSTER_URL``
   when set (existing services);
2. containers (``apache/kafka:4.1.0`` in KRaft mode, ``redis:7``) when a Docker engine answers;
3. our own :class:`pipeline.tooling.stack.LocalStack` on free ports in a temporary directory,
   with the jars shared from the repository's ``.recloop/kafka/`` cache, so a running demo
   on 9092/6379 is never touched.

A real Redis Cluster (three masters, ``pipeline.tooling.redis_cluster``) runs beside the single
Redis: the worker, API and fault tests that touch Redis run against both (``REDIS_KINDS``), so a
cross-slot command or a script a node never loaded fails the suite. A service starts only
when a test first asks for it, and stops at the end of the session.
Tests never flush anything: ``settings_factory`` gives each test its own topics and consumer
group, and tests use unique ids for Redis keys.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.stores.client import SyncRedisClient, sync_redis
from pipeline.tooling.probes import free_port, free_ports, kafka_ready
from pipeline.tooling.redis_cluster import LocalRedisCluster
from pipeline.tooling.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parents[1]
REDIS_KINDS = ["redis", "redis-cluster"]
"""Parameters of the fixtures whose tests run on a single Redis and on a Redis Cluster."""
KAFKA_IMAGE = "apache/kafka:4.1.0"
REDIS_IMAGE = "redis:7"
_LITTER = pytest.StashKey[set[str]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder so ``-m "not integration and not e2e"`` runs the fast ones."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for marker in ("integration", "e2e"):
            if marker in parts:
                item.add_marker(getattr(pytest.mark, marker))


def _litter() -> set[str]:
    """Faust data folders in the repository root (what the old default left behind)."""
    return {p.name for p in REPO_ROOT.glob("recloop*-data")}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Remember the repository root's data folders, to notice new ones at the end."""
    session.config.stash[_LITTER] = _litter()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a worker wrote its data folder into the repository root."""
    new = _litter() - session.config.stash.get(_LITTER, set())
    if new:
        session.config.get_terminal_writer().line(
            f"FAILED: workers left data folders in the repository root: {sorted(new)} "
            "(give them RECLOOP_DATA_DIR / Settings(data_dir=...))",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def repo_jar_cache() -> Path:
    """The jar cache that ``make setup`` fills: ``$RECLOOP_STACK_DIR/kafka`` (``.recloop``)."""
    stack_dir = Path(os.environ.get("RECLOOP_STACK_DIR", ".recloop"))
    if not stack_dir.is_absolute():
        stack_dir = REPO_ROOT / stack_dir
    return stack_dir / "kafka"


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def docker_available() -> bool:
    """Whether a Docker engine answers a ping (it never does on the project's machines)."""
    return _docker_answers()


@pytest.fixture(scope="session")
def kafka_jar_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's jar cache, filled if empty (``make setup`` normally did that)."""
    cache = repo_jar_cache()
    LocalStack(tmp_path_factory.mktemp("jar-probe"), jar_cache=cache).ensure_kafka_jars()
    return cache


@pytest.fixture(scope="session")
def local_stack(
    tmp_path_factory: pytest.TempPathFactory, kafka_jar_cache: Path
) -> Iterator[LocalStack]:
    """A not-yet-started stack on free ports; whatever it started is stopped at the end."""
    kafka_port, controller_port, redis_port = free_ports(3)
    stack = LocalStack(
        tmp_path_factory.mktemp("stack"),
        kafka_port=kafka_port,
        controller_port=controller_port,
        redis_port=redis_port,
        jar_cache=kafka_jar_cache,
    )
    yield stack
    stack.stop()


def _kafka_container(port: int) -> Any:
    from testcontainers.core.container import DockerContainer

    # testcontainers' KafkaContainer only knows Confluent images; apache/kafka is configured
    # by KAFKA_* variables, and the advertised address must be known before start, hence a
    # fixed free host port bound to 127.0.0.1.
    container = DockerContainer(KAFKA_IMAGE).with_envs(
        KAFKA_NODE_ID="1",
        KAFKA_PROCESS_ROLES="broker,controller",
        KAFKA_LISTENERS="PLAINTEXT://:9092,CONTROLLER://:9093",
        KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://127.0.0.1:{port}",
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
        KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
        KAFKA_INTER_BROKER_LISTENER_NAME="PLAINTEXT",
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
        KAFKA_NUM_PARTITIONS="8",
        KAFKA_AUTO_CREATE_TOPICS_ENABLE="true",
    )
    container.with_bind_ports(9092, ("127.0.0.1", port))  # docker-py: (host ip, port)
    container.start()
    deadline = time.monotonic() + 120
    while not kafka_ready(f"127.0.0.1:{port}"):
        if time.monotonic() > deadline:
            container.stop()
            raise RuntimeError(f"{KAFKA_IMAGE} container did not answer within 120 s")
        time.sleep(0.5)
    return container


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, docker_available: bool) -> Iterator[str]:
    """Bootstrap servers of a running broker (env, then container, then local stack)."""
    from_env = os.environ.get("RECLOOP_KAFKA_BOOTSTRAP")
    if from_env:
        yield from_env
    elif docker_available:
        port = free_port()
        container = _kafka_container(port)
        yield f"127.0.0.1:{port}"
        container.stop()
    else:
        stack: LocalStack = request.getfixturevalue("local_stack")
        stack.start_kafka()
        yield stack.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest, docker_available: bool) -> Iterator[str]:
    """URL of a running Redis (env, then container, then local stack)."""
    from_env = os.environ.get("RECLOOP_REDIS_URL")
    if from_env:
        yield from_env
    elif docker_available:
        from testcontainers.community.redis import RedisContainer

        container = RedisContainer(REDIS_IMAGE).start()
        host = container.get_container_host_ip()
        yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
        container.stop()
    else:
        stack: LocalStack = request.getfixturevalue("local_stack")
        stack.start_redis()
        yield stack.redis_url


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of one node of a running 3-master Redis Cluster (env, else a local one)."""
    from_env = os.environ.get("RECLOOP_TEST_REDIS_CLUSTER_URL")
    if from_env:
        yield from_env
        return
    ports = free_ports(6)
    cluster = LocalRedisCluster(
        tmp_path_factory.mktemp("redis-cluster"), ports=ports[:3], bus_ports=ports[3:]
    )
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()


def redis_url_of(request: pytest.FixtureRequest, kind: str) -> str:
    """The session's single Redis (``redis``) or Redis Cluster (``redis-cluster``) URL."""
    return str(
        request.getfixturevalue("redis_cluster_url" if kind == "redis-cluster" else "redis_url")
    )


@pytest.fixture
def settings_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Settings]:
    """Return ``make(**overrides) -> Settings`` wired to the test services.

    All settings made in one test share a topic prefix, consumer group and Redis key
    namespace (so several workers of one test form one group), different tests never do.
    Each call gets its own free ``web_port``. Kafka/Redis start only if the test does not
    override their address.
    """
    uid = uuid.uuid4().hex[:10]

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "app_id": f"recloop-test-{uid}",
            "topic_events": f"t{uid}.events",
            "topic_items": f"t{uid}.items",
            "topic_dlq": f"t{uid}.events.dlq",
            "topic_recommendations": f"t{uid}.recommendations",
            "topic_controls": f"t{uid}.controls",
            "redis_namespace": f"t{uid}",  # the test's own Redis keys
            "web_port": free_port(),
            "data_dir": tmp_path_factory.mktemp("data"),  # never the working directory
        }
        values.update(overrides)
        if "kafka_bootstrap" not in values:
            values["kafka_bootstrap"] = request.getfixturevalue("kafka_bootstrap")
        if "redis_url" not in values:
            values["redis_url"] = request.getfixturevalue("redis_url")
        return Settings(**values)

    return make


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[SyncRedisClient]:
    """A sync client of the test Redis; never flushed, so use unique keys."""
    client = sync_redis(redis_url)
    yield client
    client.close()
