"""What the serve process reads from Kafka: broker health, group progress, recent dead letters.

Every method blocks (confluent-kafka) and is called from a worker thread
(``asyncio.to_thread``). Lag and group state come from :mod:`pipeline.kafka.lag`, the one
place lag is computed; librdkafka describes the workers' group from its members'
assignments and never decodes their subscription metadata, so a Faust group (custom
assignor) is described without a warning (kafka-python's admin client logged one every 2 s).
Dead letters are a snapshot read (:mod:`pipeline.kafka.dead_letters`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pipeline.config import Settings
from pipeline.kafka.dead_letters import dead_letters
from pipeline.kafka.lag import GroupStatus, KafkaAdmin

log = logging.getLogger(__name__)

__all__ = ["GroupStatus", "KafkaView"]


class KafkaView:
    """Read-only Kafka queries of one serve process (thread-safe, blocking)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._admin = KafkaAdmin(settings, client_id=f"{settings.app_id}-serve-admin")

    def close(self) -> None:
        """Release the admin client (without waiting long for a query stuck on a dead broker)."""
        if self._lock.acquire(timeout=2.0):
            try:
                self._admin.close()
            finally:
                self._lock.release()

    def metadata_ok(self) -> bool:
        """Whether the broker answers a metadata request (``/ready``)."""
        with self._lock:
            try:
                self._admin.partitions([self.settings.topic_events])
                return True
            except Exception as exc:
                log.info("kafka metadata request failed error=%r", exc)
                return False

    def group_status(self) -> GroupStatus:
        """Members, state and lag (events and controls) of the workers' group; end offsets.

        Raises ``confluent_kafka.KafkaException`` when the broker is away (the caller samples
        again later).
        """
        s = self.settings
        with self._lock:
            return self._admin.group_status(
                s.app_id,
                lag_topics=[s.topic_events, s.topic_controls],
                topics=[s.topic_events, s.topic_controls, s.topic_dlq, s.topic_recommendations],
            )

    def recent_dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` dead letters (dead-letter v1 documents), newest first."""
        docs = dead_letters(self.settings, last=limit, timeout=5.0, client_id="serve-dlq")
        return docs[::-1][:limit]
