"""Traffic and list reading for the fault-injection e2e tests (background threads).

* :class:`Traffic` produces event v1 continuously with confluent-kafka (``acks=all``). It
  keeps the exact set of event ids the broker acknowledged; an event whose send raised or
  whose future failed is re-sent with the *same* ``event_id`` until acknowledged, so the topic
  may hold duplicates (which the workers must absorb) but an event is never half-known: at the
  end every attempted event is acknowledged or the traffic thread fails. :meth:`Traffic.replay`
  sends copies of acknowledged events on purpose.
* :class:`ListWatcher` reads the recommendations topic and keeps ``(user_id, generated_ts,
  trigger_ts)`` of every list, to check lists kept flowing.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from pipeline.config import Settings
from pipeline.events.build import build_event
from pipeline.kafka.reader import TopicReader

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
    replay: bool = False  # a deliberate copy of an event already acknowledged


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
    replays_acked: int = 0  # deliberate copies of acknowledged events now in the topic
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
        self._raw: dict[str, _Event] = {}
        self._resend: collections.deque[_Event] = collections.deque()
        self._lock = threading.Lock()
        self._stop_creating = threading.Event()
        self._finished = threading.Event()
        self.error: BaseException | None = None
        self.producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "client.id": f"{settings.app_id}-e2e-traffic",
                "acks": "all",
                # app-level re-sends of the same event are the point: no broker-side dedupe
                "enable.idempotence": False,
                "message.send.max.retries": 3,
                "partitioner": "murmur2_random",
                "linger.ms": 5,
                "request.timeout.ms": request_timeout_ms,
                "message.timeout.ms": delivery_timeout_ms,
                "reconnect.backoff.ms": 100,
                "reconnect.backoff.max.ms": 1_000,
                "logger": log,
                "log_level": 4,  # the broker is stopped on purpose: its errors are expected
            }
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
            if not event.replay:
                self._pending[event.event_id] = event
                self._raw[event.event_id] = event

        def delivered(error: KafkaError | None, message: Message[Any, Any]) -> None:
            if error is not None:
                self._failed(event, error.name())
            else:
                self._on_ack(event, message)

        try:
            self.producer.produce(
                self.settings.topic_events,
                event.raw,
                event.user_id.encode(),
                on_delivery=delivered,
            )
        except Exception as exc:  # local queue full...: re-send later
            self._failed(event, type(exc).__name__)

    def _on_ack(self, event: _Event, message: Message[Any, Any]) -> None:
        with self._lock:
            if event.replay:
                self.stats.replays_acked += 1
                return
            self._pending.pop(event.event_id, None)
            if event.event_id not in self.acked:
                self.acked[event.event_id] = Acked(
                    event.user_id,
                    event.type,
                    event.ts,
                    message.partition() or 0,
                    message.offset() or 0,
                    event.attempts,
                    wall_ms(),
                )
                self.stats.acked += 1

    def _failed(self, event: _Event, error: str) -> None:
        now = wall_ms()
        with self._lock:
            if event.replay:  # a copy that did not make it changes nothing
                return
            self.stats.send_errors += 1
            self.stats.errors[error] += 1
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
            self.producer.poll(tick)  # serves the acknowledgements; waits one tick
        # finish: every attempted event must end acknowledged
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self._drain_resends(limit=1_000)
            self.producer.flush(5)
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

    def replay(self, count: int) -> None:
        """Send again ``count`` events already acknowledged (same bytes, same ``event_id``),
        as a producer does that timed out waiting for acknowledgements that were written."""
        with self._lock:
            done = [self._raw[e] for e in self.acked]
            picked = self.rng.sample(done, min(count, len(done)))
            for e in picked:
                self._resend.append(_Event(e.event_id, e.user_id, e.type, e.ts, e.raw, 0, True))

    def finish(self, timeout: float = 120.0) -> None:
        """Stop creating events, wait until every attempted one was acknowledged, close."""
        self._stop_creating.set()
        self._finished.wait(timeout)
        self.producer.flush(5)
        if self.error is not None:
            raise self.error
        if not self._finished.is_set():
            msg = "traffic thread did not finish"
            raise RuntimeError(msg)

    def abort(self) -> None:
        """Stop at once (cleanup after a failure)."""
        self._stop_creating.set()
        self._finished.wait(5)
        self.producer.purge()

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
        self.reader = TopicReader(settings, settings.topic_recommendations, client_id="e2e")
        self.seen: list[ListSeen] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.errors = 0

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                records = self.reader.poll(0.2)
            except Exception as exc:  # broker restarting: keep polling
                self.errors += 1
                log.debug("list watcher poll failed: %r", exc)
                time.sleep(0.2)
                continue
            now = wall_ms()
            new = []
            for r in records:
                doc = orjson.loads(r.value or b"")
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
        self.reader.close()

    def lists(self) -> list[ListSeen]:
        """Everything read so far."""
        with self._lock:
            return list(self.seen)

    def stop(self) -> None:
        """Stop reading and close the consumer."""
        self._halt.set()
        self.join(10)
