"""Shared machinery of the fault-injection e2e tests: traffic, list watching, exact counts.

* :class:`Traffic` produces event v1 continuously from a background thread with
  kafka-python (``acks='all'``). It keeps the exact set of event ids the broker acknowledged;
  an event whose send raised or whose future failed is re-sent with the *same* ``event_id``
  until acknowledged, so the topic may hold duplicates (which the workers must absorb) but an
  event is never half-known: at the end every attempted event is acknowledged or the test
  fails before asserting anything.
* :class:`ListWatcher` reads the recommendations topic from a background thread and keeps
  ``(user_id, generated_ts, trigger_ts)`` of every list, to check lists kept flowing.
* :func:`reflected_counts`, :func:`wait_converged` and :func:`describe_mismatch` compare the
  ``n_click``/``n_skip``/``n_watch`` counters in Redis with what was produced, per user.

Everything here stops what it started; the tests stop their worker processes by PID.
"""

from __future__ import annotations

import bisect
import collections
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.config import Settings
from pipeline.producer import build_event
from pipeline.stores.keys import RedisKeys
from pipeline.testing import WorkerProcess

log = logging.getLogger(__name__)

TYPES = ("click", "skip", "watch")
COUNTERS = ("n_click", "n_skip", "n_watch")
Counts = tuple[int, int, int]


def wall_ms() -> int:
    """Epoch milliseconds (the unit of ``ts``, ``generated_ts``, ``trigger_ts``)."""
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------- traffic
@dataclass
class _Event:
    event_id: str
    user_id: str
    type: str
    ts: int
    raw: bytes
    attempts: int = 0


@dataclass(frozen=True)
class Acked:
    """An event the broker acknowledged: where it landed and after how many attempts."""

    user_id: str
    type: str
    ts: int
    partition: int
    offset: int
    attempts: int
    acked_ms: int


@dataclass
class TrafficStats:
    """What the producer thread did (for reports)."""

    created: int = 0
    acked: int = 0
    send_attempts: int = 0
    send_errors: int = 0  # send() raised or the future failed; the event was re-sent
    first_error_ms: int | None = None
    last_error_ms: int | None = None
    errors: collections.Counter[str] = field(default_factory=collections.Counter)


class Traffic(threading.Thread):
    """Continuous events for ``users`` at ``rate`` events/s, each acknowledged exactly once.

    ``acked`` maps every acknowledged ``event_id`` to ``(user_id, type)``: the ground truth
    the counters in Redis must equal. Re-sends reuse the event's bytes (same ``event_id``).
    """

    def __init__(
        self,
        settings: Settings,
        users: Sequence[str],
        items: Sequence[str],
        *,
        rate: float,
        seed: int,
        delivery_timeout_ms: int = 120_000,
        request_timeout_ms: int = 30_000,
    ) -> None:
        super().__init__(name="e2e-traffic", daemon=True)
        self.settings = settings
        self.users = list(users)
        self.items = list(items)
        self.rate = rate
        self.rng = random.Random(seed)
        self.stats = TrafficStats()
        self.acked: dict[str, Acked] = {}
        self._pending: dict[str, _Event] = {}
        self._resend: collections.deque[_Event] = collections.deque()
        self._lock = threading.Lock()
        self._stop_creating = threading.Event()
        self._finished = threading.Event()
        self.error: BaseException | None = None
        self.producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"{settings.app_id}-e2e-traffic",
            acks="all",
            # app-level re-sends of the same event are the point: no broker-side dedupe
            enable_idempotence=False,
            retries=3,
            linger_ms=5,
            request_timeout_ms=request_timeout_ms,
            delivery_timeout_ms=delivery_timeout_ms,
            max_block_ms=2_000,
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=1_000,
        )

    # -- generation
    def _new_event(self) -> _Event:
        rng = self.rng
        user = rng.choice(self.users)
        kind = rng.choices(TYPES, weights=(5, 3, 4))[0]
        doc: dict[str, object] = {"type": kind, "user_id": user, "item_id": rng.choice(self.items)}
        if kind == "watch":
            doc["watch_seconds"] = round(rng.uniform(30.0, 600.0), 1)
            doc["duration_seconds"] = 600.0
        elif kind == "skip":
            doc["watch_seconds"] = round(rng.uniform(0.0, 20.0), 1)
        doc["context"] = {"locale": rng.choice(["en-GB", "de-DE"]), "device": "web"}
        event, raw = build_event(doc, self.settings, now_ms=wall_ms())
        return _Event(event.event_id, user, kind, event.ts, raw)

    # -- sending
    def _send(self, event: _Event) -> None:
        event.attempts += 1
        with self._lock:
            self.stats.send_attempts += 1
            self._pending[event.event_id] = event
        try:
            future = self.producer.send(
                self.settings.topic_events, key=event.user_id.encode(), value=event.raw
            )
        except Exception as exc:  # buffer full, metadata unavailable...: re-send later
            self._failed(event, exc)
            return
        future.add_callback(self._on_ack, event)
        future.add_errback(self._on_error, event)

    def _on_ack(self, event: _Event, metadata: Any) -> None:
        with self._lock:
            self._pending.pop(event.event_id, None)
            if event.event_id not in self.acked:
                self.acked[event.event_id] = Acked(
                    event.user_id,
                    event.type,
                    event.ts,
                    metadata.partition,
                    metadata.offset,
                    event.attempts,
                    wall_ms(),
                )
                self.stats.acked += 1

    def _on_error(self, event: _Event, exc: BaseException) -> None:
        self._failed(event, exc)

    def _failed(self, event: _Event, exc: BaseException) -> None:
        now = wall_ms()
        with self._lock:
            self.stats.send_errors += 1
            self.stats.errors[type(exc).__name__] += 1
            self.stats.first_error_ms = self.stats.first_error_ms or now
            self.stats.last_error_ms = now
            if event.event_id in self.acked:  # an earlier attempt succeeded after all
                self._pending.pop(event.event_id, None)
                return
            self._resend.append(event)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # surfaced by finish()
            self.error = exc
            log.exception("traffic thread failed")
        finally:
            self._finished.set()

    def _run(self) -> None:
        started = time.monotonic()
        tick = 0.02
        while not self._stop_creating.is_set():
            self._drain_resends(limit=200)
            due = int((time.monotonic() - started) * self.rate) - self.stats.created
            # never pile up more than ~2 s of traffic while the broker is unreachable
            with self._lock:
                backlog = len(self._pending)
            if backlog < 2 * self.rate:
                for _ in range(max(0, min(due, int(self.rate)))):
                    event = self._new_event()
                    self.stats.created += 1
                    self._send(event)
            else:  # do not count the paused time as owed events
                started += tick
            time.sleep(tick)
        # finish: every attempted event must end acknowledged
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self._drain_resends(limit=1_000)
            try:
                self.producer.flush(timeout=5)
            except Exception as exc:  # KafkaTimeoutError while the broker is away
                log.debug("flush failed: %r", exc)
            with self._lock:
                if not self._pending and not self._resend:
                    return
            time.sleep(0.2)
        with self._lock:
            missing = len(self._pending)
        msg = f"{missing} events were never acknowledged within 90 s after the stream stopped"
        raise RuntimeError(msg)

    def _drain_resends(self, limit: int) -> None:
        for _ in range(limit):
            with self._lock:
                if not self._resend:
                    return
                event = self._resend.popleft()
            self._send(event)

    def finish(self, timeout: float = 120.0) -> None:
        """Stop creating events, wait until every attempted one was acknowledged, close."""
        self._stop_creating.set()
        self._finished.wait(timeout)
        try:
            self.producer.close(timeout=5)
        except Exception as exc:  # closing is best effort
            log.debug("producer close failed: %r", exc)
        if self.error is not None:
            raise self.error
        if not self._finished.is_set():
            msg = "traffic thread did not finish"
            raise RuntimeError(msg)

    def abort(self) -> None:
        """Stop at once (cleanup after a failure)."""
        self._stop_creating.set()
        self._finished.wait(5)
        try:
            self.producer.close(timeout=1)
        except Exception as exc:  # best effort
            log.debug("producer close failed: %r", exc)

    def expected(self) -> dict[str, Counts]:
        """Acknowledged unique events per user as ``(n_click, n_skip, n_watch)``."""
        per_user: dict[str, list[int]] = {u: [0, 0, 0] for u in self.users}
        for a in self.snapshot().values():
            per_user[a.user_id][TYPES.index(a.type)] += 1
        return {u: (c[0], c[1], c[2]) for u, c in per_user.items()}

    def snapshot(self) -> dict[str, Acked]:
        """A copy of the acknowledged events."""
        with self._lock:
            return dict(self.acked)

    def acked_count(self) -> int:
        """Events acknowledged so far."""
        with self._lock:
            return len(self.acked)


# --------------------------------------------------------------------------- lists
@dataclass(frozen=True)
class ListSeen:
    """One message read from the recommendations topic."""

    user_id: str
    generated_ts: int
    trigger_ts: int | None
    trigger_event_id: str | None
    read_ms: int


class ListWatcher(threading.Thread):
    """Reads the recommendations topic from the beginning until stopped."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="e2e-lists", daemon=True)
        self.consumer = KafkaConsumer(
            settings.topic_recommendations,
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=1_000,
        )
        self.seen: list[ListSeen] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.errors = 0

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                batch = self.consumer.poll(timeout_ms=200)
            except Exception as exc:  # broker restarting: keep polling
                self.errors += 1
                log.debug("list watcher poll failed: %r", exc)
                time.sleep(0.2)
                continue
            now = wall_ms()
            new = []
            for records in batch.values():
                for r in records:
                    doc = orjson.loads(r.value)
                    new.append(
                        ListSeen(
                            doc["user_id"],
                            int(doc["generated_ts"]),
                            doc.get("trigger_ts"),
                            doc.get("trigger_event_id"),
                            now,
                        )
                    )
            if new:
                with self._lock:
                    self.seen.extend(new)
        self.consumer.close()

    def lists(self) -> list[ListSeen]:
        """Everything read so far."""
        with self._lock:
            return list(self.seen)

    def stop(self) -> None:
        """Stop reading and close the consumer."""
        self._halt.set()
        self.join(10)


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
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5_000
        )
    except Exception:
        return None
    consumer = None
    try:
        committed = admin.list_group_offsets(settings.app_id).get(settings.app_id, {})
        consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=None, request_timeout_ms=5_000
        )
        parts = consumer.partitions_for_topic(settings.topic_events) or set()
        tps = [TopicPartition(settings.topic_events, p) for p in parts]
        ends = consumer.end_offsets(tps)
        lag = 0
        for tp in tps:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(0, ends[tp] - done)
        return lag
    except Exception as exc:
        log.debug("lag unknown: %r", exc)
        return None
    finally:
        admin.close()
        if consumer is not None:
            consumer.close()


# --------------------------------------------------------------------------- waiting
def wait_converged(
    client: redis.Redis,
    keys: RedisKeys,
    settings: Settings,
    expected: dict[str, Counts],
    *,
    timeout: float,
    on_poll: Callable[[dict[str, Counts]], None] | None = None,
) -> tuple[dict[str, Counts], float]:
    """Wait until the counters equal ``expected`` and the group committed everything.

    Returns the last counters read and the seconds waited. Counters equal *and* zero lag
    means no redelivery is pending that could still change them; the caller asserts.
    """
    users = list(expected)
    started = time.monotonic()
    deadline = started + timeout
    got: dict[str, Counts] = {}
    while time.monotonic() < deadline:
        try:
            got = reflected_counts(client, keys, users)
        except redis.RedisError:
            time.sleep(0.5)
            continue
        if on_poll is not None:
            on_poll(got)
        if got == expected and group_lag(settings) == 0:
            break
        time.sleep(0.5)
    waited = time.monotonic() - started
    time.sleep(2.0)  # anything late (a redelivery) would show now
    got = reflected_counts(client, keys, users)
    return got, waited


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
