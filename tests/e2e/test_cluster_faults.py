"""Faults on a Redis Cluster under continuous traffic: zero lost, zero double-counted events.

Each test runs its own 3-master Redis Cluster (``LocalRedisCluster`` on free ports) on the
session's Kafka broker, because one of them restarts a master:

* a worker SIGKILLed mid-stream: its uncommitted events are redelivered to the survivor,
  whose per-user scripts recognise what the dead one wrote; the refreshes it owed are
  rescued from the owed-refresh index;
* a master stopped for 6 s and started again on the same data: writes to its slots fail
  (then the whole cluster reports CLUSTERDOWN), the worker retries its batch as a whole
  (every command in it is idempotent), and the restarted master has lost its script cache
  (NOSCRIPT: loaded again, only the failed commands re-sent).

Every user's counters must end exactly equal to the events acknowledged for them, and every
user's final list must reflect their last event. Each test prints a report line.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.client import SyncRedisClient, sync_redis
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.probes import free_ports
from pipeline.tooling.processes import WorkerProcess
from pipeline.tooling.redis_cluster import LocalRedisCluster
from tests.e2e.fault_harness import (
    describe_mismatch,
    events_by_outcome,
    log_lines,
    stop_all,
    total,
    wait_converged,
    wait_lists_follow,
)
from tests.e2e.fault_streams import ListWatcher, Traffic, wall_ms

pytestmark = pytest.mark.timeout(240)

USERS = 150
RATE = 150.0  # events/s
CATEGORIES = ["Comedy", "Drama", "Documentary", "Music", "Sports", "Kids"]
ITEMS = [f"{c.lower()}-{n}" for c in CATEGORIES for n in range(10)]


@dataclass
class Env:
    cluster: LocalRedisCluster
    settings: Settings
    make: Callable[[], Settings]
    redis: SyncRedisClient
    keys: RedisKeys
    users: list[str]
    workers: list[WorkerProcess]
    logs: Path

    def start_worker(self, name: str) -> WorkerProcess:
        worker = WorkerProcess(self.make(), log_path=self.logs / f"{name}.log")
        self.workers.append(worker)
        return worker.wait_ready(90)


@pytest.fixture
def env(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[Env]:
    """An own Redis Cluster, topics with 6 partitions and a catalogue; no worker yet."""
    ports = free_ports(6)
    cluster = LocalRedisCluster(tmp_path / "cluster", ports=ports[:3], bus_ports=ports[3:])
    workers: list[WorkerProcess] = []
    client: SyncRedisClient | None = None
    try:
        cluster.start()

        def make() -> Settings:
            return settings_factory(
                redis_url=cluster.url, topic_partitions=6, refresh_rescue_after_seconds=5.0
            )

        settings = make()
        ensure_topics(settings)
        now = wall_ms()
        with EventProducer(settings) as producer:
            for n, item in enumerate(ITEMS):
                category = item.split("-")[0].title()
                producer.item(item, [category], duration_seconds=600.0, published_ts=now - n)
        client = sync_redis(cluster.url, socket_timeout=5)
        users = [f"u{n:03d}-{uuid.uuid4().hex[:4]}" for n in range(USERS)]
        yield Env(cluster, settings, make, client, RedisKeys(settings.redis_namespace), users,
                  workers, tmp_path)  # fmt: skip
    finally:
        stop_all(workers)
        if client is not None:
            client.close()
        cluster.stop()


def run_traffic(env: Env, inject: Callable[[], None], *, seed: int) -> dict[str, Any]:
    """8 s of traffic, ``inject()``, 10 s more; then wait until the counters converge."""
    traffic = Traffic(env.settings, env.users, ITEMS, rate=RATE, seed=seed)
    watcher = ListWatcher(env.settings)
    watcher.start()
    try:
        traffic.start()
        started = wall_ms()
        time.sleep(8)
        fault = wall_ms()
        inject()
        fault_s = (wall_ms() - fault) / 1000
        time.sleep(10)
        traffic.finish()
        expected = traffic.expected()
        got, waited = wait_converged(env.redis, env.keys, env.settings, expected, timeout=120)
    finally:
        traffic.abort()
        watcher.stop()
    report = {
        "produced": total(expected),
        "reflected": total(got),
        "run_s": round((wall_ms() - started) / 1000, 1),
        "fault_s": round(fault_s, 1),
        "converged_after_s": round(waited, 1),
        "events_total": [events_by_outcome(w) for w in env.workers if w.proc.poll() is None],
        "lists": len(watcher.lists()),
    }
    return {"expected": expected, "got": got, "acked": traffic.snapshot(), "report": report}


def assert_exact(env: Env, result: dict[str, Any], name: str) -> None:
    report = result["report"]
    print(f"\n{name} report: {report}")
    logs = "\n".join(
        line
        for w in env.workers
        for line in log_lines(w.log_path, "ERROR", "degraded:", "recovered:", "conflict", limit=15)
    )
    assert result["got"] == result["expected"], (
        f"counters differ from the events produced:\n"
        f"{describe_mismatch(result['expected'], result['got'])}\nreport={report}\n{logs}"
    )
    stale = wait_lists_follow(env.redis, env.keys, result["acked"], timeout=45)
    assert not stale, f"{len(stale)} users' lists miss their last event: {stale[:5]}\n{logs}"


def test_a_worker_killed_on_a_redis_cluster_loses_and_double_counts_nothing(env: Env) -> None:
    survivor = env.start_worker("w1")
    victim = env.start_worker("w2")
    time.sleep(3)  # both hold partitions

    def kill() -> None:
        victim.kill()

    result = run_traffic(env, kill, seed=21)
    assert_exact(env, result, "cluster-worker-sigkill")
    assert survivor.proc.poll() is None, survivor.tail()


def test_a_restarted_master_loses_and_double_counts_nothing(env: Env) -> None:
    worker = env.start_worker("w1")
    port = env.cluster.ports[1]

    def restart_master() -> None:
        env.cluster.stop_node(port)
        time.sleep(6)  # past the node timeout: the cluster reports CLUSTERDOWN
        env.cluster.start_node(port)
        env.cluster.wait_ok(60)

    result = run_traffic(env, restart_master, seed=23)
    assert_exact(env, result, "cluster-master-restart")
    assert worker.proc.poll() is None, worker.tail()
    text = worker.log_path.read_text(errors="replace")
    assert "degraded:" in text and "recovered:" in text, "the outage never reached the worker"
    assert "NOSCRIPT" in text, "the restarted master's empty script cache was never met"
