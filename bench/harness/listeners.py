"""Lists as clients see them: the recommendations topic and each user's ``recs`` key.

Both record when a list reflecting an event became visible, measured against the event's
``ts`` (the bench's send time), so what they time is event sent -> list visible, every hop
included. Each runs in its own thread, beside the producer.
"""

from __future__ import annotations

import heapq
import threading
import time

import orjson
import redis

from pipeline.config import Settings
from pipeline.kafka.reader import TopicReader
from pipeline.stores.keys import RedisKeys


def now_ms() -> int:
    """Wall clock in ms: what the bench writes as an event's ``ts``."""
    return time.time_ns() // 1_000_000


class ListListener(threading.Thread):
    """Reads the recommendations topic from its end; keeps (received_ms, trigger_ts) pairs."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="list-listener", daemon=True)
        # from the end offsets as they are now: no list published later can be missed
        self.reader = TopicReader(
            settings,
            settings.topic_recommendations,
            start="end",
            client_id="bench-lists",
            options={"fetch.wait.max.ms": 50},
        )
        self.samples: list[tuple[int, int]] = []
        self.untriggered = 0
        self.received = 0
        self.newest: dict[str, int] = {}  # user -> newest trigger_ts received
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            records = self.reader.poll(0.1)
            received = now_ms()
            for record in records:
                self.received += 1
                trigger_ts = orjson.loads(record.value or b"{}").get("trigger_ts")
                if trigger_ts is None:
                    self.untriggered += 1
                    continue
                self.samples.append((received, int(trigger_ts)))
                user = record.key.decode() if record.key else ""
                if trigger_ts > self.newest.get(user, -1):
                    self.newest[user] = int(trigger_ts)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.reader.close()


class RedisSampler(threading.Thread):
    """Polls the recs key of sampled events until it reflects them (or something newer).

    Samples wait in a heap by next poll time: young ones are polled every tick, old ones
    (whose latency is already far past the goal) every 50 ms, then every 250 ms, so a backlog
    of hundreds of stale samples costs the machine little.
    """

    def __init__(self, settings: Settings, poll_seconds: float = 0.005, timeout_ms: int = 30_000):
        super().__init__(name="redis-sampler", daemon=True)
        self.client = redis.Redis.from_url(settings.redis_url)
        self.keys = RedisKeys(settings.redis_namespace)
        self.poll_seconds = poll_seconds
        self.timeout_ms = timeout_ms
        self._heap: list[tuple[int, int, str, str]] = []  # (next poll ms, ts, user, event id)
        self.latencies: list[int] = []
        self.timed_out = 0
        self._lock = threading.Lock()
        self._halt = threading.Event()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._heap)

    def add(self, user_id: str, event_id: str, ts: int) -> None:
        with self._lock:
            heapq.heappush(self._heap, (ts, ts, user_id, event_id))

    @staticmethod
    def next_poll(ts: int, now: int) -> int:
        """Every 5 ms for 2 s, then every 50 ms, after 10 s every 250 ms.

        >>> RedisSampler.next_poll(0, 100), RedisSampler.next_poll(0, 5_000)
        (105, 5050)
        """
        age = now - ts
        step = 5 if age < 2_000 else 50 if age < 10_000 else 250
        return now + step

    def run(self) -> None:
        while not self._halt.is_set():
            now = now_ms()
            due = []
            with self._lock:
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap))
            if due:
                self._check(due)
            time.sleep(self.poll_seconds)

    def _check(self, due: list[tuple[int, int, str, str]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for _, _, user_id, _ in due:
            pipe.get(self.keys.recs(user_id))
        values = pipe.execute()
        seen = now_ms()
        again = []
        for (_, ts, user_id, event_id), raw in zip(due, values, strict=True):
            if raw is not None:
                doc = orjson.loads(raw)
                trig_ts = doc.get("trigger_ts")
                if doc.get("trigger_event_id") == event_id or (
                    trig_ts is not None and trig_ts > ts
                ):
                    self.latencies.append(seen - ts)
                    continue
            if seen - ts > self.timeout_ms:
                self.timed_out += 1
                continue
            again.append((self.next_poll(ts, seen), ts, user_id, event_id))
        with self._lock:
            for item in again:
                heapq.heappush(self._heap, item)

    def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the pending samples to resolve."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pending:
            time.sleep(0.05)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.client.close()
