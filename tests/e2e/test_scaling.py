"""Scaling out and losing workers under continuous traffic: exact counts, lists keep flowing.

One worker starts; traffic runs the whole time; two workers join (rebalance), one of them is
SIGKILLed mid-stream (its uncommitted events are redelivered to the others), the other is
stopped gracefully (SIGTERM); traffic goes on, then stops. Every user's counters must end
exactly equal to the unique events acknowledged for them, and lists must have been published
throughout the run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from fault_harness import (
    ListWatcher,
    Traffic,
    describe_mismatch,
    empty_windows,
    events_by_outcome,
    log_lines,
    longest_gap,
    stop_all,
    total,
    wait_converged,
    wall_ms,
)

from pipeline.config import Settings
from pipeline.producer import EventProducer
from pipeline.stores.keys import RedisKeys
from pipeline.testing import WorkerProcess
from pipeline.topics import ensure_topics

pytestmark = pytest.mark.timeout(240)

USERS = 200
RATE = 250.0  # events/s
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
            producer.item(item, [item.split("-")[0].title()], duration_seconds=600.0,
                          published_ts=now - n * 60_000)
    keys = RedisKeys(base.redis_namespace)
    users = [f"u{n:03d}-{uuid.uuid4().hex[:4]}" for n in range(USERS)]

    def start_worker(name: str) -> WorkerProcess:
        settings = settings_factory(topic_partitions=6)  # same group/topics, own web port
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
        time.sleep(8)  # both joined and took partitions (rebalance under traffic)
        w2.kill()
        timeline["w2_killed"] = wall_ms()
        time.sleep(6)
        w3.stop()
        timeline["w3_stopped"] = wall_ms()
        time.sleep(8)
        traffic.finish()
        timeline["traffic_end"] = wall_ms()
    except BaseException:
        traffic.abort()
        watcher.stop()
        raise

    expected = traffic.expected()
    got, waited = wait_converged(redis_client, keys, base, expected, timeout=90)
    converged_ms = wall_ms()
    time.sleep(1.0)
    watcher.stop()
    outcomes = events_by_outcome(w1)
    lists = watcher.lists()
    stamps = [x.generated_ts for x in lists]
    start, end = timeline["traffic_start"], timeline["traffic_end"]
    gaps = empty_windows(stamps, start, end)
    gap = longest_gap(stamps, start, end)

    report = {
        "produced": total(expected),
        "created": traffic.stats.created,
        "send_errors": traffic.stats.send_errors,
        "reflected": total(got),
        "lists": len(lists),
        "w1_outcomes": outcomes,
        "converged_after_s": round(waited, 1),
        "run_s": round((end - start) / 1000, 1),
        "longest_gap_s": round(gap[0] / 1000, 1),
        "timeline_s": {k: round((v - start) / 1000, 1) for k, v in timeline.items()},
    }
    print(f"\nscaling report: {report}")
    assert traffic.stats.created >= 0.8 * RATE * (end - start) / 1000 * 0.8
    assert got == expected, (
        "counters differ from the events produced:\n"
        + describe_mismatch(expected, got)
        + f"\nreport={report}\n"
        + "\n".join(
            f"--- {w.log_path.name} ---\n" + "\n".join(log_lines(w.log_path, "ERROR", "degraded"))
            for w in workers
        )
    )

    # every user got a list reflecting their latest acknowledged event... at least the last one
    # published for them comes after their last event was produced
    last_list: dict[str, int] = {}
    for x in lists:
        last_list[x.user_id] = max(last_list.get(x.user_id, 0), x.generated_ts)
    assert set(last_list) >= {u for u, c in expected.items() if sum(c)}

    # lists kept refreshing through the whole run, across every fault
    assert not gaps, (
        f"no list was published in {len(gaps)} 5-second window(s) of the run: "
        + ", ".join(f"[{(a - start) / 1000:.0f}s, {(b - start) / 1000:.0f}s)" for a, b in gaps)
        + f"; longest gap {gap[0] / 1000:.1f}s from {(gap[1] - start) / 1000:.1f}s; report={report}"
    )
    for fault in ("scaled_out", "w2_killed", "w3_stopped"):
        after = [x for x in lists if x.trigger_ts is not None and x.trigger_ts >= timeline[fault]]
        assert after, f"no list reflected an event produced after {fault}"
    del converged_ms




