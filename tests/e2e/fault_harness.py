"""Checks of the fault-injection e2e tests: exact counts, list freshness, convergence.

The ground truth comes from :mod:`tests.e2e.fault_streams` (events acknowledged by the broker,
lists read from the topic); these helpers compare it with the ``n_click``/``n_skip``/
``n_watch`` counters in Redis, per user, and with the recommendation lists, per user and per
input partition, and stop worker processes by PID.
"""

from __future__ import annotations

import bisect
import collections
import logging
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import redis

from pipeline.config import Settings
from pipeline.kafka.lag import KafkaAdmin
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import WorkerProcess
from tests.e2e.fault_streams import COUNTERS, Acked, Counts, ListSeen

log = logging.getLogger(__name__)


def empty_windows(
    generated: Iterable[int], start_ms: int, end_ms: int, window_ms: int = 5_000
) -> list[tuple[int, int]]:
    """Consecutive ``window_ms`` windows of ``[start_ms, end_ms)`` in which no list was made."""
    stamps = sorted(generated)
    gaps = []
    t = start_ms
    i = 0
    while t + window_ms <= end_ms:
        while i < len(stamps) and stamps[i] < t:
            i += 1
        if i >= len(stamps) or stamps[i] >= t + window_ms:
            gaps.append((t, t + window_ms))
        t += window_ms
    return gaps


def longest_gap(generated: Iterable[int], start_ms: int, end_ms: int) -> tuple[int, int, int]:
    """``(length_ms, from_ms, to_ms)`` of the longest stretch without a list in the span."""
    stamps = [start_ms, *sorted(s for s in generated if start_ms <= s <= end_ms), end_ms]
    best = (0, start_ms, start_ms)
    for a, b in zip(stamps, stamps[1:], strict=False):
        if b - a > best[0]:
            best = (b - a, a, b)
    return best


def reflection_latencies(
    acked: dict[str, Acked], lists: Sequence[ListSeen]
) -> dict[str, int | None]:
    """Per event: ms from its ``ts`` to the first list of its user reflecting it, or None.

    A list reflects an event when its trigger is that event or a later one of the same user
    (coalescing publishes the latest event's list only).
    """
    by_user: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for x in lists:
        if x.trigger_ts is not None:
            by_user[x.user_id].append((x.trigger_ts, x.generated_ts))
    suffix_min: dict[str, tuple[list[int], list[int]]] = {}
    for user, pairs in by_user.items():
        pairs.sort()
        triggers = [t for t, _ in pairs]
        best = [0] * len(pairs)
        running = None
        for i in range(len(pairs) - 1, -1, -1):
            g = pairs[i][1]
            running = g if running is None else min(running, g)
            best[i] = running
        suffix_min[user] = (triggers, best)
    out: dict[str, int | None] = {}
    for event_id, a in acked.items():
        triggers, best = suffix_min.get(a.user_id, ([], []))
        i = bisect.bisect_left(triggers, a.ts)
        out[event_id] = None if i >= len(triggers) else max(0, best[i] - a.ts)
    return out


def latency_summary(latencies: dict[str, int | None]) -> dict[str, Any]:
    """p50 / p99 / max (seconds) of reflection latencies, and how many were never reflected."""
    values = sorted(v for v in latencies.values() if v is not None)
    if not values:
        return {"never": len(latencies)}

    def q(p: float) -> float:
        return round(values[min(len(values) - 1, int(p * len(values)))] / 1000, 2)

    return {
        "p50_s": q(0.5),
        "p99_s": q(0.99),
        "max_s": round(values[-1] / 1000, 2),
        "never": sum(v is None for v in latencies.values()),
    }


def latency_by_phase(
    acked: dict[str, Acked], latencies: dict[str, int | None], timeline: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """``latency_summary`` of the events created in each phase (between timeline marks)."""
    marks = sorted(timeline.items(), key=lambda kv: kv[1])
    out: dict[str, dict[str, Any]] = {}
    for (name, begin), (_, end) in zip(marks, marks[1:], strict=False):
        ids = [e for e, a in acked.items() if begin <= a.ts < end]
        out[f"{name}+"] = latency_summary({e: latencies[e] for e in ids})
    return out


def partition_recovery(
    acked: dict[str, Acked], lists: Sequence[ListSeen], since_ms: int
) -> dict[int, float | None]:
    """Per input partition: seconds from ``since_ms`` to the first list reflecting an event
    of that partition created at or after ``since_ms`` (None: never)."""
    partition_of = {a.user_id: a.partition for a in acked.values()}
    first: dict[int, int] = {}
    for x in lists:
        if x.trigger_ts is None or x.trigger_ts < since_ms or x.user_id not in partition_of:
            continue
        p = partition_of[x.user_id]
        first[p] = min(first.get(p, x.generated_ts), x.generated_ts)
    parts = sorted(set(partition_of.values()))
    return {p: (round((first[p] - since_ms) / 1000, 2) if p in first else None) for p in parts}


def partition_list_gaps(
    acked: dict[str, Acked], lists: Sequence[ListSeen], start_ms: int
) -> dict[int, tuple[float, float]]:
    """Per input partition: the longest stretch without any list for its users.

    Measured from ``start_ms`` to the partition's last list, so a stall that outlasts the
    traffic still counts; as ``(gap_s, gap_start_s)`` relative to ``start_ms``. Unlike
    event-to-list latency this does not grow when a worker merely lags behind: a lagging
    worker still publishes lists for every partition it owns.
    """
    partition_of = {a.user_id: a.partition for a in acked.values()}
    stamps: dict[int, list[int]] = collections.defaultdict(list)
    for x in lists:
        if x.user_id in partition_of and x.generated_ts >= start_ms:
            stamps[partition_of[x.user_id]].append(x.generated_ts)
    out: dict[int, tuple[float, float]] = {}
    for p in sorted(set(partition_of.values())):
        ts = [start_ms, *sorted(stamps[p])]
        gap, at = max(((b - a, a) for a, b in zip(ts, ts[1:], strict=False)), default=(0, start_ms))
        out[p] = (round(gap / 1000, 1), round((at - start_ms) / 1000, 1))
    return out


def last_event_per_user(acked: dict[str, Acked]) -> dict[str, tuple[str, Acked]]:
    """Each user's event with the highest acknowledged offset (a user has one partition)."""
    out: dict[str, tuple[str, Acked]] = {}
    for event_id, a in acked.items():
        if a.user_id not in out or a.offset > out[a.user_id][1].offset:
            out[a.user_id] = (event_id, a)
    return out


def stale_final_lists(client: redis.Redis, keys: RedisKeys, acked: dict[str, Acked]) -> list[str]:
    """Users whose ``recs`` key does not reflect their last event.

    The last event is the one with the highest offset when it was acknowledged at the first
    attempt (then no copy of another event can sit after it); otherwise any of the user's
    events is accepted, since the copy the worker applied first is unknown.
    """
    last = last_event_per_user(acked)
    users = sorted(last)
    pipe = client.pipeline(transaction=False)
    for user in users:
        pipe.get(keys.recs(user))
    bad = []
    ids_of: dict[str, set[str]] = collections.defaultdict(set)
    for event_id, a in acked.items():
        ids_of[a.user_id].add(event_id)
    for user, raw in zip(users, pipe.execute(), strict=True):
        event_id, a = last[user]
        trigger = None if raw is None else orjson.loads(raw).get("trigger_event_id")
        ok = trigger == event_id if a.attempts == 1 else trigger in ids_of[user]
        if not ok:
            bad.append(f"{user}: recs trigger={trigger} last event={event_id}")
    return bad


def wait_lists_follow(
    client: redis.Redis, keys: RedisKeys, acked: dict[str, Acked], timeout: float = 30.0
) -> list[str]:
    """``stale_final_lists`` polled until empty or ``timeout``: what is still stale then.

    A list owed by a worker that was killed is rescued by another worker once it is
    ``RECLOOP_REFRESH_RESCUE_AFTER_SECONDS`` (15 s) overdue, so it may arrive after the
    counters converged.
    """
    deadline = time.monotonic() + timeout
    while True:
        stale = stale_final_lists(client, keys, acked)
        if not stale or time.monotonic() > deadline:
            return stale
        time.sleep(0.5)


# --------------------------------------------------------------------------- redis
def reflected_counts(
    client: redis.Redis, keys: RedisKeys, users: Sequence[str]
) -> dict[str, Counts]:
    """``(n_click, n_skip, n_watch)`` per user as stored in the features hashes."""
    pipe = client.pipeline(transaction=False)
    for user in users:
        pipe.hmget(keys.features(user), *COUNTERS)
    out: dict[str, Counts] = {}
    for user, values in zip(users, pipe.execute(), strict=True):
        c = [int(v) if v is not None else 0 for v in values]
        out[user] = (c[0], c[1], c[2])
    return out


def total(counts: dict[str, Counts]) -> int:
    """Sum of all counters."""
    return sum(sum(c) for c in counts.values())


def describe_mismatch(expected: dict[str, Counts], got: dict[str, Counts], limit: int = 8) -> str:
    """Human summary of how the reflected counters differ from the produced events."""
    lost = dup = 0
    users_lost, users_dup = [], []
    for user, exp in expected.items():
        g = got.get(user, (0, 0, 0))
        diff = [g[i] - exp[i] for i in range(3)]
        lost += sum(-d for d in diff if d < 0)
        dup += sum(d for d in diff if d > 0)
        if any(d < 0 for d in diff):
            users_lost.append((user, exp, g))
        if any(d > 0 for d in diff):
            users_dup.append((user, exp, g))
    lines = [
        f"produced={total(expected)} reflected={total(got)} "
        f"missing={lost} (users={len(users_lost)}) extra={dup} (users={len(users_dup)})",
    ]
    for user, exp, g in (users_lost + users_dup)[:limit]:
        lines.append(f"  {user}: produced (click, skip, watch)={exp} reflected={g}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- kafka
def group_lag(settings: Settings) -> int | None:
    """Events of the input topic not yet committed by the workers' group (None if unknown)."""
    admin = KafkaAdmin(settings, client_id="e2e-lag")
    try:
        partitions = admin.partitions([settings.topic_events])
        return sum(admin.lag(settings.app_id, partitions).values())
    except Exception as exc:
        log.debug("lag unknown: %r", exc)
        return None
    finally:
        admin.close()


# --------------------------------------------------------------------------- waiting
def wait_converged(
    client: redis.Redis,
    keys: RedisKeys,
    settings: Settings,
    expected: dict[str, Counts],
    *,
    timeout: float,
    settled_after: float = 10.0,
) -> tuple[dict[str, Counts], float]:
    """Wait until the counters equal ``expected`` and the group committed everything.

    Returns the last counters read and the seconds waited; the caller asserts. Counters equal
    *and* zero lag means no redelivery is pending that could still change them. Gives up
    early when the group committed everything and the counters stayed put for
    ``settled_after`` seconds: they are final then, right or wrong.
    """
    users = list(expected)
    started = time.monotonic()
    deadline = started + timeout
    got: dict[str, Counts] = {}
    changed = started
    while time.monotonic() < deadline:
        try:
            now_counts = reflected_counts(client, keys, users)
        except redis.RedisError:
            time.sleep(0.5)
            continue
        if now_counts != got:
            got, changed = now_counts, time.monotonic()
        settled = time.monotonic() - changed >= settled_after
        if (got == expected or settled) and group_lag(settings) == 0:
            break
        time.sleep(0.5)
    waited = time.monotonic() - started
    time.sleep(2.0)  # anything late (a redelivery) would show now
    return reflected_counts(client, keys, users), waited


# --------------------------------------------------------------------------- workers
_METRIC = re.compile(r'^recloop_events_total\{outcome="(?P<o>[^"]+)",type="[^"]+"\} (?P<v>\S+)$')


def events_by_outcome(worker: WorkerProcess) -> dict[str, int]:
    """``recloop_events_total`` summed over types, by outcome (empty if unreachable)."""
    try:
        text = worker.metrics()
    except OSError:
        return {}
    out: dict[str, int] = collections.Counter()
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m:
            out[m["o"]] += int(float(m["v"]))
    return dict(out)


def log_lines(path: Path, *needles: str, limit: int = 20) -> list[str]:
    """Lines of a worker log containing any of ``needles`` (first ``limit``)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    hits = [line for line in text.splitlines() if any(n in line for n in needles)]
    return hits[:limit]


def stop_all(workers: Iterable[WorkerProcess]) -> None:
    """Stop every worker by PID (SIGTERM, SIGKILL after 20 s); never raises."""
    for w in workers:
        try:
            if w.proc.poll() is None:
                w.stop(timeout=20)
        except Exception:  # cleanup must go on with the others
            log.exception("could not stop worker pid=%d", w.pid)
            try:
                w.kill()
            except Exception:
                log.exception("could not kill worker pid=%d", w.pid)
