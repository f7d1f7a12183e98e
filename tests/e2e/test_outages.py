"""Redis and Kafka outages under continuous traffic: no loss, no double count, self-recovery.

Each test runs its own Kafka broker and Redis (``LocalStack`` on free ports in a temporary
directory, jars from the shared cache) because it stops and restarts them; the session's
services are never touched. Redis is stopped for 10 s and started again on the same
append-only data; the broker is stopped and started again on the same data directory and
ports. Meanwhile events keep coming; the producer re-sends an event (same ``event_id``)
whenever a send fails, so the topic may hold duplicates the worker must absorb; after the
broker restart 300 acknowledged events are also sent again on purpose (certain duplicates).
Each test prints a report line: produced, reflected, duplicates seen by the worker, times
to recover.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.probes import free_port, free_ports
from pipeline.tooling.processes import WorkerProcess
from pipeline.tooling.stack import LocalStack
from tests.e2e.fault_harness import (
    describe_mismatch,
    events_by_outcome,
    latency_summary,
    log_lines,
    partition_recovery,
    reflected_counts,
    reflection_latencies,
    stop_all,
    total,
    wait_converged,
    wait_lists_follow,
)
from tests.e2e.fault_streams import ListWatcher, Traffic, wall_ms

pytestmark = pytest.mark.timeout(240)

USERS = 150
RATE = 200.0  # events/s
MAX_RECOVERY_S = 30.0  # fault over -> counters grow again and lists are published again
CATEGORIES = ["Comedy", "Drama", "Documentary", "Music", "Sports", "Kids"]
ITEMS = [f"{c.lower()}-{n}" for c in CATEGORIES for n in range(10)]


@dataclass
class Env:
    stack: LocalStack
    settings: Settings
    worker: WorkerProcess
    redis: redis.Redis
    keys: RedisKeys
    users: list[str]


@pytest.fixture
def env(tmp_path: Path, kafka_jar_cache: Path) -> Iterator[Env]:
    """Own Kafka + Redis, topics with 6 partitions, a catalogue and one ready worker."""
    kafka_port, controller_port, redis_port = free_ports(3)
    stack = LocalStack(
        tmp_path / "stack",
        kafka_port=kafka_port,
        controller_port=controller_port,
        redis_port=redis_port,
        jar_cache=kafka_jar_cache,
    )
    workers: list[WorkerProcess] = []
    client: redis.Redis | None = None
    try:
        stack.start()
        uid = uuid.uuid4().hex[:8]
        settings = Settings(
            kafka_bootstrap=stack.kafka_bootstrap,
            redis_url=stack.redis_url,
            redis_namespace=f"o{uid}",
            app_id=f"recloop-outage-{uid}",
            topic_events=f"o{uid}.events",
            topic_items=f"o{uid}.items",
            topic_dlq=f"o{uid}.events.dlq",
            topic_recommendations=f"o{uid}.recommendations",
            topic_partitions=6,
            web_port=free_port(),
            data_dir=tmp_path / "data",
        )
        ensure_topics(settings)
        now = wall_ms()
        with EventProducer(settings) as producer:
            for n, item in enumerate(ITEMS):
                category = item.split("-")[0].title()
                producer.item(item, [category], duration_seconds=600.0, published_ts=now - n)
        worker = WorkerProcess(settings, log_path=tmp_path / "worker.log")
        workers.append(worker)
        worker.wait_ready(90)
        client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
        users = [f"u{n:03d}-{uuid.uuid4().hex[:4]}" for n in range(USERS)]
        env = Env(stack, settings, worker, client, RedisKeys(settings.redis_namespace), users)
        yield env
        if env.worker not in workers:  # a test replaced the worker: stop its replacement too
            workers.append(env.worker)
    finally:
        stop_all(workers)
        if client is not None:
            client.close()
        stack.stop()


def terminate_pid(pid: int, still_running: Any, timeout: float = 60.0) -> None:
    """SIGTERM one process we started, SIGKILL after ``timeout``; wait until it is gone."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while still_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    if still_running():
        os.kill(pid, signal.SIGKILL)
        while still_running():
            time.sleep(0.1)


def watch_recovery(env: Env, since_ms: int, timeout: float = MAX_RECOVERY_S) -> float | None:
    """Seconds from ``since_ms`` until the total of the counters grows again (None: never)."""
    baseline = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            now_total = total(reflected_counts(env.redis, env.keys, env.users))
        except redis.RedisError:
            time.sleep(0.2)
            continue
        if baseline is None:
            baseline = now_total
        elif now_total > baseline:
            return round((wall_ms() - since_ms) / 1000, 2)
        time.sleep(0.2)
    return None


def first_list_after(lists: list[Any], since_ms: int) -> dict[str, float | None]:
    """Seconds from ``since_ms`` to the first list published, and to the first list that
    reflects an event created at or after ``since_ms``."""
    published = [x.generated_ts for x in lists if x.generated_ts >= since_ms]
    fresh = [x.generated_ts for x in lists if x.trigger_ts is not None and x.trigger_ts >= since_ms]
    return {
        "first_list_s": round((min(published) - since_ms) / 1000, 2) if published else None,
        "first_fresh_list_s": round((min(fresh) - since_ms) / 1000, 2) if fresh else None,
    }


def run_fault(
    env: Env,
    inject: Any,
    *,
    name: str,
    traffic: Traffic,
    replay_after_fault: int = 0,
) -> dict[str, Any]:
    """Traffic before, during and after ``inject()`` (which returns when the fault is over);
    then wait for convergence; returns everything the assertions and the report need."""
    watcher = ListWatcher(env.settings)
    watcher.start()
    timeline: dict[str, int] = {}
    try:
        traffic.start()
        timeline["traffic_start"] = wall_ms()
        time.sleep(8)
        timeline["fault_start"] = wall_ms()
        inject()
        timeline["fault_end"] = wall_ms()
        traffic.replay(replay_after_fault)
        counts_resumed_s = watch_recovery(env, timeline["fault_end"])
        time.sleep(max(0.0, 12 - (wall_ms() - timeline["fault_end"]) / 1000))
        traffic.finish()
        timeline["traffic_end"] = wall_ms()
        expected = traffic.expected()
        got, waited = wait_converged(env.redis, env.keys, env.settings, expected, timeout=90)
        time.sleep(1.0)
    finally:
        traffic.abort()
        watcher.stop()
    acked = traffic.snapshot()
    lists = watcher.lists()
    start = timeline["traffic_start"]
    outcomes = events_by_outcome(env.worker)
    report = {
        "fault": name,
        "produced": total(expected),
        "reflected": total(got),
        "sends_failed_and_resent": traffic.stats.send_errors,
        "send_errors": dict(traffic.stats.errors),
        "resent_events": sum(1 for a in acked.values() if a.attempts > 1),
        "replayed_copies_acked": traffic.stats.replays_acked,
        "worker_events_total": outcomes,
        "duplicates_seen_by_worker": outcomes.get("duplicate", 0),
        "fault_s": round((timeline["fault_end"] - timeline["fault_start"]) / 1000, 1),
        "timeline_s": {k: round((v - start) / 1000, 1) for k, v in timeline.items()},
        "counts_resumed_s": counts_resumed_s,
        **first_list_after(lists, timeline["fault_end"]),
        "partition_recovery_s": partition_recovery(acked, lists, timeline["fault_end"]),
        "event_to_list": latency_summary(reflection_latencies(acked, lists)),
        "converged_after_s": round(waited, 1),
        "lists": len(lists),
    }
    print(f"\n{name} report: {report}")
    return {"expected": expected, "got": got, "acked": acked, "report": report}


def assert_recovered(env: Env, result: dict[str, Any]) -> None:
    """Exact counts, a live worker, fresh lists after the fault, final lists up to date."""
    report = result["report"]
    logs = "\n".join(
        log_lines(env.worker.log_path, "degraded:", "recovered:", "ERROR", "batch failed", limit=40)
    )
    assert result["got"] == result["expected"], (
        f"counters differ from the events produced:\n"
        f"{describe_mismatch(result['expected'], result['got'])}\nreport={report}\n{logs}"
    )
    assert env.worker.proc.poll() is None, f"the worker exited:\n{env.worker.tail()}"
    # lag-proof signs of recovery: the counters grow again and lists are published again
    # (how soon a list reflects a post-fault event also depends on the backlog; reported)
    resumed = report["counts_resumed_s"]
    assert resumed is not None and resumed <= MAX_RECOVERY_S, (
        f"the counters did not grow within {MAX_RECOVERY_S:.0f} s of the fault's end: "
        f"report={report}\n{logs}"
    )
    first = report["first_list_s"]
    assert first is not None and first <= MAX_RECOVERY_S, (
        f"no list published within {MAX_RECOVERY_S:.0f} s of the fault's end: report={report}"
    )
    stale = wait_lists_follow(env.redis, env.keys, result["acked"])
    assert not stale, f"{len(stale)} users' lists miss their last event: {stale[:5]}"


def test_redis_down_for_10_s_loses_and_double_counts_nothing(env: Env) -> None:
    stack = env.stack

    def redis_outage() -> None:
        pid = stack.status().redis.pid
        assert pid is not None
        terminate_pid(pid, lambda: stack.status().redis.pid is not None)
        time.sleep(10)
        stack.start_redis()  # same port, same directory: the append-only file is replayed

    traffic = Traffic(env.settings, env.users, ITEMS, rate=RATE, seed=11)
    result = run_fault(env, redis_outage, name="redis-outage", traffic=traffic)
    log_text = env.worker.log_path.read_text(errors="replace")
    assert "degraded:" in log_text, "the worker never reported the outage (degraded:)"
    assert "recovered:" in log_text, "the worker never reported recovery (recovered:)"
    assert_recovered(env, result)


def test_kafka_broker_restart_loses_and_double_counts_nothing(env: Env) -> None:
    stack = env.stack

    def broker_restart() -> None:
        pid = stack.status().kafka.pid
        assert pid is not None
        terminate_pid(pid, lambda: stack.status().kafka.pid is not None)
        time.sleep(5)
        stack.start_kafka()  # same ports, same data directory: topics and offsets survive

    # short delivery timeout: sends fail during the outage and are re-sent by the test with
    # the same event_id, so the topic gets duplicates the worker has to absorb
    traffic = Traffic(
        env.settings,
        env.users,
        ITEMS,
        rate=RATE,
        seed=13,
        delivery_timeout_ms=5_000,
        request_timeout_ms=2_000,
    )
    # and, once the broker is back, 300 acknowledged events are sent again: certain duplicates
    result = run_fault(
        env, broker_restart, name="kafka-restart", traffic=traffic, replay_after_fault=300
    )
    report = result["report"]
    assert report["sends_failed_and_resent"] > 0, "the outage never reached the producer"
    assert_recovered(env, result)
    assert report["duplicates_seen_by_worker"] >= report["replayed_copies_acked"] > 0, report


def _in_flight(worker: WorkerProcess) -> int:
    try:
        text = worker.metrics()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("recloop_batches_in_flight "):
            return int(float(line.split()[1]))
    return 0


def test_worker_killed_with_two_batches_in_flight_loses_and_double_counts_nothing(
    env: Env,
) -> None:
    """Redis stalls (SIGSTOP): batch N's write hangs, batch N+1 is learned on top of it; then
    the worker is SIGKILLed with both in flight, Redis resumes and a new worker takes over."""
    stack = env.stack
    seen: dict[str, int] = {}

    def crash_with_batches_in_flight() -> None:
        pid = stack.status().redis.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and _in_flight(env.worker) < 2:
                time.sleep(0.05)
            # longer than Faust's commit interval (2.8 s): anything acknowledged too early
            # would be committed now, and lost with the kill
            time.sleep(4)
            seen["in_flight"] = _in_flight(env.worker)  # at the kill, Redis still stopped
            env.worker.kill()
        finally:
            os.kill(pid, signal.SIGCONT)
        replacement = WorkerProcess(env.settings, log_path=env.worker.log_path.with_name("w2.log"))
        env.worker = replacement  # the fixture stops it, ready or not
        replacement.wait_ready(90)

    traffic = Traffic(env.settings, env.users, ITEMS, rate=RATE, seed=17)
    result = run_fault(env, crash_with_batches_in_flight, name="kill-in-flight", traffic=traffic)
    assert seen["in_flight"] == 2, f"expected two batches in flight at the kill: {seen}"
    assert_recovered(env, result)


def _mean_batch(worker: WorkerProcess) -> float:
    sums = {"recloop_batch_size_sum": 0.0, "recloop_batch_size_count": 0.0}
    for line in worker.metrics().splitlines():
        name, _, value = line.partition(" ")
        if name in sums:
            sums[name] = float(value)
    count = sums["recloop_batch_size_count"]
    return sums["recloop_batch_size_sum"] / count if count else 0.0


def test_batches_gathered_from_a_backlog_survive_a_rebalance_and_a_graceful_stop(
    env: Env, tmp_path: Path
) -> None:
    """A worker drains a backlog in gathered batches (events held across takes, unacked);
    a second worker joins (rebalance) and the first is stopped with SIGTERM mid-drain. Held
    events must leave by the gathering deadline (Faust waits for every event it handed out),
    so the stop is prompt, and every event counts exactly once."""
    env.worker.stop()  # the backlog builds with no consumer
    backlog = 30_000
    expected: dict[str, tuple[int, int, int]] = {}
    with EventProducer(env.settings) as producer:
        for n in range(backlog):
            user = env.users[n % len(env.users)]
            producer.click(user, ITEMS[(n * 7) % len(ITEMS)])
            c = expected.get(user, (0, 0, 0))
            expected[user] = (c[0] + 1, c[1], c[2])
        producer.flush()

    first = WorkerProcess(env.settings, log_path=tmp_path / "gather-1.log").wait_ready(90)
    env.worker = first
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and events_by_outcome(first).get("applied", 0) < 3_000:
        time.sleep(0.2)
    gathered = _mean_batch(first)
    assert gathered > 150, f"batches were not gathered from the backlog: mean {gathered:.0f}"

    second_settings = env.settings.model_copy(update={"web_port": free_port()})
    second = WorkerProcess(second_settings, log_path=tmp_path / "gather-2.log")
    try:
        second.wait_ready(90)  # joining rebalances the group while the first one gathers
        applied_before_stop = events_by_outcome(first).get("applied", 0)
        started = time.monotonic()
        first.stop(timeout=30)  # SIGKILL only after 30 s
        stopped_in = time.monotonic() - started
        env.worker = second
        got, waited = wait_converged(
            env.redis, env.keys, env.settings, expected, timeout=150, settled_after=15
        )
    finally:
        if env.worker is not second:
            second.stop()
    assert applied_before_stop < backlog, "the first worker finished the backlog before the stop"
    assert stopped_in < 25, f"a graceful stop took {stopped_in:.1f} s (held events not handed on?)"
    assert got == expected, describe_mismatch(expected, got)
    print(
        f"gathered-backlog: mean batch {gathered:.0f}, first worker applied "
        f"{applied_before_stop} before its stop ({stopped_in:.1f} s), converged in {waited:.1f} s"
    )
