"""Read topics without joining a consumer group: tails, dead-letter scans, test readers.

recloop's own readers (``recloop tail``, ``recloop dlq``, the serve process's dead-letter
page, the test and benchmark helpers) never commit offsets and must not take partitions
from anyone, so they *assign* every partition of a topic instead of subscribing. They use
confluent-kafka's ``Consumer``; each call blocks for at most its timeout.

:class:`TopicReader` follows a topic from its beginning or its end; :func:`read_range` takes
a snapshot: what a topic holds up to its end offsets at the time of the call.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)

from pipeline.config import Settings
from pipeline.kafka.options import client_config

Start = Literal["beginning", "end"]
BATCH = 500
"""Records taken per ``consume`` call."""
METADATA_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Record:
    """One record as read, with where it was read from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None


def reader_consumer(
    settings: Settings, *, client_id: str, options: Mapping[str, Any] | None = None
) -> Consumer:
    """A consumer that only ever assigns partitions (its group id is never joined)."""
    return Consumer(
        {
            **client_config(settings, client_id=client_id),
            "group.id": f"{settings.app_id}-{client_id}-unjoined",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            **(options or {}),
        }
    )


def topic_partitions(consumer: Consumer, topic: str) -> list[int]:
    """Partition numbers of ``topic`` (empty when it does not exist).

    Raises
    ------
    KafkaException
        The broker did not answer within ``METADATA_TIMEOUT_SECONDS``.
    """
    meta = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_SECONDS)
    found = meta.topics.get(topic)
    if found is None or found.error is not None:
        return []
    return sorted(found.partitions)


class TopicReader:
    """Reads every partition of ``topics`` from their beginning or their current end.

    A topic that does not exist yet is looked for again at each :meth:`poll`, so a reader
    can be opened before the workers create their topics.
    """

    def __init__(
        self,
        settings: Settings,
        topics: str | Sequence[str],
        *,
        start: Start = "beginning",
        client_id: str = "reader",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.consumer = reader_consumer(settings, client_id=client_id, options=options)
        self._start = start
        self._waiting = [topics] if isinstance(topics, str) else list(topics)
        self._assigned: list[TopicPartition] = []
        try:
            self._assign()
        except KafkaException:
            self.consumer.close()
            raise

    def _assign(self) -> None:
        found = {name: topic_partitions(self.consumer, name) for name in self._waiting}
        new = [
            TopicPartition(n, p, self._offset(n, p)) for n, parts in found.items() for p in parts
        ]
        if new:
            self._assigned += new
            self.consumer.assign(self._assigned)
            self._waiting = [name for name, parts in found.items() if not parts]

    def _offset(self, topic: str, partition: int) -> int:
        if self._start == "beginning":
            return OFFSET_BEGINNING
        # the end offset now, not librdkafka's lazily resolved OFFSET_END: a record written
        # after the constructor returned is always read
        _, high = self.consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=METADATA_TIMEOUT_SECONDS
        )
        return int(high)

    def poll(self, timeout: float = 1.0) -> list[Record]:
        """The records that arrive within ``timeout`` seconds (at most ``BATCH``)."""
        if self._waiting:
            self._assign()
            if not self._assigned:
                time.sleep(timeout)
                return []
        return _records(self.consumer.consume(BATCH, timeout))

    def close(self) -> None:
        """Leave the partitions and close the connection."""
        self.consumer.close()


def read_range(
    settings: Settings,
    topic: str,
    *,
    last: int | None = None,
    timeout: float = 10.0,
    client_id: str = "scan",
) -> list[Record]:
    """Every record of ``topic`` up to its end offsets now (per partition, the ``last`` ones).

    Records appended during the call are left out, so a scan that re-sends what it read
    (``recloop dlq redrive``) cannot loop. Returns what was read within ``timeout``.
    """
    consumer = reader_consumer(settings, client_id=client_id)
    try:
        wanted: dict[int, int] = {}
        assign = []
        for p in topic_partitions(consumer, topic):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=METADATA_TIMEOUT_SECONDS
            )
            first = low if last is None else max(low, high - last)
            if high > first:
                wanted[p] = high
                assign.append(TopicPartition(topic, p, first))
        if not assign:
            return []
        consumer.assign(assign)
        out: list[Record] = []
        deadline = time.monotonic() + timeout
        while wanted and time.monotonic() < deadline:
            for record in _records(consumer.consume(BATCH, 0.2)):
                end = wanted.get(record.partition)
                if end is None or record.offset >= end:
                    continue
                out.append(record)
                if record.offset + 1 >= end:
                    del wanted[record.partition]
        return out
    finally:
        consumer.close()


def _records(messages: Iterable[Message[Any, Any]]) -> list[Record]:
    out = []
    for m in messages:
        if m.error() is not None:
            continue  # partition EOF and transient fetch errors: librdkafka retries
        topic, partition, offset = m.topic(), m.partition(), m.offset()
        if topic is None or partition is None or offset is None:
            continue
        kind, ts = m.timestamp()
        out.append(Record(topic, partition, offset, m.key(), m.value(), ts if kind else None))
    return out
