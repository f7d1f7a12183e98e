"""Kafka for benchmarks: fast pre-loading, topic sizes, and a consumer group's lag over time.

Offsets and lag come from ``pipeline.kafka.lag.KafkaAdmin`` (the one lag module, the same the
workers export on ``/metrics``); records go out through recloop's producer client
(``pipeline.kafka.producer``), keyed with Kafka's murmur2 like every other producer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from pipeline.config import Settings
from pipeline.kafka.lag import KafkaAdmin
from pipeline.kafka.producer import EventProducer, kafka_producer
from pipeline.kafka.topics import ensure_topics

from .output import log


def admin_client(settings: Settings) -> KafkaAdmin:
    """The broker's view of offsets and groups; close it when done."""
    return KafkaAdmin(settings, client_id="recloop-bench-admin")


def end_offsets(admin: KafkaAdmin, topic: str, partitions: int) -> dict[int, int]:
    """Log-end offset of every partition of ``topic``."""
    ends = admin.offsets([(topic, p) for p in range(partitions)])
    return {p: end for (_, p), end in ends.items()}


def group_lag(admin: KafkaAdmin, group: str, topic: str, partitions: int) -> int:
    """Records on ``topic`` not yet committed by ``group`` (all partitions)."""
    return int(sum(admin.lag(group, [(topic, p) for p in range(partitions)]).values()))


def topic_size(admin: KafkaAdmin, topic: str, partitions: int) -> int:
    """Records in ``topic`` (sum of log-end offsets; the bench topics are never truncated)."""
    return sum(end_offsets(admin, topic, partitions).values())


def create_topic(settings: Settings, name: str) -> None:
    """Create ``name`` like the workers' own topics (idempotent, waits for leaders)."""
    ensure_topics(settings.model_copy(update={"topic_events": name}))


def publish_catalogue(settings: Settings, items: Iterable[dict[str, Any]]) -> int:
    """Send every item to the items topic and wait for the acks; the number sent."""
    n = 0
    with EventProducer(settings) as producer:
        for item in items:
            producer.send_item(item)
            n += 1
        producer.flush(60)
    return n


def fast_produce(settings: Settings, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Send keyed records as fast as the client goes and wait for every ack.

    For pre-loading: large batches (``linger.ms`` 20), acks from all replicas.
    """
    producer = kafka_producer(
        settings, client_id="recloop-bench-loader", linger_ms=20, delivery_timeout_ms=300_000
    )
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    sent = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=delivered)
                break
            except BufferError:  # local queue full: wait for acknowledgements
                producer.poll(0.05)
        sent += 1
        if sent % 1_000 == 0:
            producer.poll(0)
    left = producer.flush(300)
    if left or failures:
        raise RuntimeError(f"pre-load failed: {left} unacknowledged, errors {failures[:3]}")
    return sent


class LagSampler(threading.Thread):
    """Committed lag of a consumer group on the events topic, once a second.

    Faust commits every 2.8 s, so single samples jitter by up to ~3 s of traffic; compare
    means over parts of a run, not single samples.
    """

    def __init__(self, settings: Settings, t0: float, interval: float = 1.0) -> None:
        super().__init__(name="lag-sampler", daemon=True)
        self.settings = settings
        self.admin = admin_client(settings)
        self.t0 = t0
        self.interval = interval
        self.samples: list[tuple[float, int]] = []  # (seconds since t0, lag)
        self._halt = threading.Event()
        self._lock = threading.Lock()  # the sampler thread and wait_drained share the admin

    def lag(self) -> int:
        s = self.settings
        with self._lock:
            return group_lag(self.admin, s.app_id, s.topic_events, s.topic_partitions)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.samples.append((time.monotonic() - self.t0, self.lag()))
            except Exception as exc:  # a missed sample is not a failed benchmark
                log(f"lag sample failed: {exc!r}")

    def wait_drained(self, timeout: float, poll: float = 0.25) -> float | None:
        """Seconds until the group's lag is 0 (``None`` if not within ``timeout``)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.lag() == 0:
                return time.monotonic() - t0
            time.sleep(poll)
        return None

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
        self.admin.close()
