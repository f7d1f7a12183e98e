"""What the serve process reads from Kafka: broker health, group progress, recent dead letters.

kafka-python is synchronous; every method here blocks and is called from a worker thread
(``asyncio.to_thread``). One admin client and one group-less consumer are opened on first use
and shared under a lock, so a dashboard refreshing every few seconds costs a few requests,
not a new connection each time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from pipeline.config import Settings
from pipeline.kafka.options import kafka_client_options

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 3_000


@dataclass(slots=True)
class GroupStatus:
    """Progress of the workers' consumer group on the input topics."""

    members: int = 0
    state: str = "unknown"
    lag: int = 0
    end_offsets: dict[str, int] = field(default_factory=dict)


class KafkaView:
    """Read-only Kafka queries of one serve process (thread-safe, blocking)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._admin: KafkaAdminClient | None = None
        self._consumer: KafkaConsumer | None = None

    # --- clients ------------------------------------------------------------------------
    def _admin_client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(
                **kafka_client_options(self.settings),
                client_id=f"{self.settings.app_id}-serve-admin",
                request_timeout_ms=REQUEST_TIMEOUT_MS,
                bootstrap_timeout_ms=REQUEST_TIMEOUT_MS,
            )
        return self._admin

    def _consumer_client(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                **kafka_client_options(self.settings),
                client_id=f"{self.settings.app_id}-serve-reader",
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=max(REQUEST_TIMEOUT_MS, 10_000) + 1,
            )
        return self._consumer

    def _reset(self) -> None:
        """Drop clients after an error; the next call reconnects."""
        for client in (self._admin, self._consumer):
            if client is not None:
                try:
                    client.close()
                except Exception as exc:  # closing a broken client may fail too
                    log.debug("close failed error=%r", exc)
        self._admin = None
        self._consumer = None

    def close(self) -> None:
        """Release the connections (without waiting long for a query stuck on a dead broker)."""
        if self._lock.acquire(timeout=2.0):
            try:
                self._reset()
            finally:
                self._lock.release()

    # --- queries ------------------------------------------------------------------------
    def metadata_ok(self) -> bool:
        """Whether the broker answers a metadata request (``/ready``)."""
        with self._lock:
            try:
                self._admin_client().list_topics()
                return True
            except Exception as exc:
                log.info("kafka metadata request failed error=%r", exc)
                self._reset()
                return False

    def _end_offsets(self, topics: list[str]) -> dict[TopicPartition, int]:
        consumer = self._consumer_client()
        partitions: list[TopicPartition] = []
        for topic in topics:
            for p in consumer.partitions_for_topic(topic) or ():
                partitions.append(TopicPartition(topic, p))
        if not partitions:
            return {}
        ends: dict[TopicPartition, int] = consumer.end_offsets(partitions)
        return ends

    def group_status(self) -> GroupStatus:
        """Members, state and lag of the workers' group; end offsets of every topic.

        Raises whatever kafka-python raises when the broker is away (the caller samples
        again later).
        """
        s = self.settings
        topics = [s.topic_events, s.topic_controls, s.topic_dlq, s.topic_recommendations]
        status = GroupStatus()
        with self._lock:
            try:
                ends = self._end_offsets(topics)
                admin = self._admin_client()
                groups: Any = admin.describe_groups([s.app_id])
                offsets: Any = admin.list_group_offsets(s.app_id)
            except Exception:
                self._reset()
                raise
        for tp, end in ends.items():
            status.end_offsets[tp.topic] = status.end_offsets.get(tp.topic, 0) + int(end)
        group = groups.get(s.app_id) or {}
        status.members = len(group.get("members") or [])
        status.state = str(group.get("group_state") or group.get("state") or "unknown")
        committed = offsets.get(s.app_id) or {}
        for tp, end in ends.items():
            if tp.topic not in (s.topic_events, s.topic_controls):
                continue
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            status.lag += max(0, int(end) - int(done))
        return status

    def recent_dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` dead letters (dead-letter v1 documents), newest first."""
        topic = self.settings.topic_dlq
        with self._lock:
            try:
                consumer = self._consumer_client()
                ends = self._end_offsets([topic])
                if not ends:
                    return []
                consumer.assign(list(ends))
                for tp, end in ends.items():
                    consumer.seek(tp, max(0, int(end) - limit))
                wanted = {tp: int(end) for tp, end in ends.items()}
                records: list[Any] = []
                remaining = {tp for tp, end in wanted.items() if end > 0}
                for _ in range(20):  # bounded: each poll waits at most 200 ms
                    if not remaining:
                        break
                    batch = consumer.poll(timeout_ms=200, max_records=limit * len(ends))
                    for tp, recs in batch.items():
                        records.extend(recs)
                        if recs and recs[-1].offset + 1 >= wanted[tp]:
                            remaining.discard(tp)
                consumer.unsubscribe()
            except Exception:
                self._reset()
                raise
        docs = []
        for record in records:
            try:
                doc = orjson.loads(record.value)
            except orjson.JSONDecodeError:
                continue
            if isinstance(doc, dict):
                docs.append(doc)
        docs.sort(key=lambda d: int(d.get("dead_lettered_ts") or 0), reverse=True)
        return docs[:limit]
