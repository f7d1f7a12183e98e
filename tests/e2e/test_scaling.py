"""Scaling out and losing workers under continuous traffic: exact counts, lists keep flowing.

One worker starts; traffic runs the whole time; two workers join (rebalance), one of them is
SIGKILLed mid-stream (its uncommitted events are redelivered to the others), the other is
stopped gracefully (SIGTERM); traffic goes on, then stops. Every user's counters must end
exactly equal to the unique events acknowledged for them, and lists must have been published
throughout the run: in every 5-second window of the run, and for the users of every
partition at least once every 30 s (a crash must not leave a third of the users without
fresh lists until the dead member's session times out).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import WorkerProcess
from tests.e2e.fault_harness import (
    describe_mismatch,
    empty_windows,
    events_by_outcome,
    latency_by_phase,
    latency_summary,
    log_lines,
    longest_gap,
    partition_list_gaps,
    partition_recovery,
    reflection_latencies,
    stop_all,
    total,
    wait_converged,
    wait_lists_follow,
)
from tests.e2e.fault_streams import ListWatcher, Traffic, wall_ms

pytestmark = pytest.mark.timeout(240)

USERS = 200
RATE = 200.0  # events/s
MAX_PARTITION_GAP_S = 30.0  # longest time the users of one partition may get no list
CATEGORIES = ["Comedy", "Drama", "Documentary", "Music", "Sports", "Kids"]
ITEMS = [f"{c.lower()}-{n}" for c in CATEGORIES for n in range(10)]


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    stop_all(started)


def test_rebalance_crash_and_graceful_stop_keep_exact_counts_and_fresh_lists(
    settings_factory: Callable[..., Settings],
    redis_client: redis.Redis,
    workers: list[WorkerProcess],
    tmp_path: Path,
) -> None:
    base = settings_factory(topic_partitions=6)
    ensure_topics(base)
    now = wall_ms()
    with EventProducer(base) as producer:
        for n, item in enumerate(ITEMS):
            category = item.split("-")[0].title()
            producer.item(item, [category], duration_seconds=600.0, published_ts=now - n * 60_000)
    keys = RedisKeys(base.redis_namespace)
    users = [f"u{n:03d}-{uuid.uuid4().hex[:4]}" for n in range(USERS)]

    def start_worker(name: str) -> WorkerProcess:
        settings = settings_factory(topic_partitions=6)  # same group and topics, own web port
        worker = WorkerProcess(settings, log_path=tmp_path / f"{name}.log")
        workers.append(worker)
        return worker

    w1 = start_worker("w1").wait_ready(90)
    watcher = ListWatcher(base)
    watcher.start()
    traffic = Traffic(base, users, ITEMS, rate=RATE, seed=7)
    timeline: dict[str, int] = {}
    try:
        traffic.start()
        timeline["traffic_start"] = wall_ms()
        time.sleep(6)
        w2, w3 = start_worker("w2"), start_worker("w3")
        w2.wait_ready(90)
        w3.wait_ready(90)
        timeline["scaled_out"] = wall_ms()
        time.sleep(8)  # both joined the group and took partitions while events flowed
        before_kill = events_by_outcome(w2)  # what w2 counted dies with it
        w2.kill()
        timeline["w2_killed"] = wall_ms()
        time.sleep(6)
        before_stop = events_by_outcome(w3)
        w3.stop()
        timeline["w3_stopped"] = wall_ms()
        time.sleep(8)
        traffic.finish()
        timeline["traffic_end"] = wall_ms()
        expected = traffic.expected()
        got, waited = wait_converged(redis_client, keys, base, expected, timeout=90)
        time.sleep(1.0)  # the last lists reach the watcher
    finally:
        traffic.abort()
        watcher.stop()

    acked = traffic.snapshot()
    lists = watcher.lists()
    start, end = timeline["traffic_start"], timeline["traffic_end"]
    stamps = [x.generated_ts for x in lists]
    gaps = empty_windows(stamps, start, end)
    gap = longest_gap(stamps, start, end)
    latencies = reflection_latencies(acked, lists)
    partition_gaps = partition_list_gaps(acked, lists, start)
    stalled = {p: g for p, g in partition_gaps.items() if g[0] > MAX_PARTITION_GAP_S}
    report = {
        "produced": total(expected),
        "reflected": total(got),
        "send_errors": traffic.stats.send_errors,
        "lists": len(lists),
        "events_total": {
            "w1_at_end": events_by_outcome(w1),
            "w2_before_kill": before_kill,
            "w3_before_stop": before_stop,
        },
        "converged_after_s": round(waited, 1),
        "run_s": round((end - start) / 1000, 1),
        "timeline_s": {k: round((v - start) / 1000, 1) for k, v in timeline.items()},
        "longest_list_gap_s": [round(gap[0] / 1000, 1), round((gap[1] - start) / 1000, 1)],
        "partition_list_gaps_s": partition_gaps,
        "event_to_list": latency_summary(latencies),
        "event_to_list_by_phase": latency_by_phase(acked, latencies, timeline),
        "partition_recovery_s": {
            f: partition_recovery(acked, lists, timeline[f])
            for f in ("scaled_out", "w2_killed", "w3_stopped")
        },
    }
    print(f"\nscaling report: {report}")
    logs = "\n".join(
        f"--- {w.log_path.name} ---\n"
        + "\n".join(log_lines(w.log_path, "ERROR", "degraded", "Joined group", "Revoking"))
        for w in workers
    )

    assert traffic.stats.created >= 0.5 * RATE * (end - start) / 1000  # traffic really flowed
    assert got == expected, (
        f"counters differ from the events produced:\n{describe_mismatch(expected, got)}\n"
        f"report={report}\n{logs}"
    )
    assert w1.proc.poll() is None, f"the surviving worker exited:\n{w1.tail()}"
    stale = wait_lists_follow(redis_client, keys, acked)
    assert not stale, f"{len(stale)} users' lists miss their last event: {stale[:5]}"
    assert not gaps, (
        f"no list was published in {len(gaps)} 5-second window(s) of the run: "
        + ", ".join(f"[{(a - start) / 1000:.0f}s, {(b - start) / 1000:.0f}s)" for a, b in gaps)
        + f"\nreport={report}\n{logs}"
    )
    assert not stalled, (
        f"users of partitions {sorted(stalled)} got no list for more than "
        f"{MAX_PARTITION_GAP_S:.0f} s: (gap s, from s) {stalled}\nreport={report}\n{logs}"
    )
