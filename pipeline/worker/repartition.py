"""One owner per user, whatever the producer: the repartition hop.

A user's events and controls must reach one worker, in order, and a user's Redis index
entries live under their partition: all of that rests on every record sitting on the
partition Kafka's default partitioner (murmur2) gives its key. Producers that partition
otherwise (librdkafka's CRC32 default, kcat, an explicit partition, no key) put records
elsewhere. The worker that finds such a record does not process it: it re-produces the
exact bytes, keyed by the user id (or item id), to the topic, where the producer's own
murmur2 partitioner places it right, and waits for the broker's acknowledgement before the
batch's offsets are committed. The hop is idempotent through the record's id (an event
re-produced twice is de-duplicated by the user's event ids; a control or an item applies
the same way twice) and is counted in ``recloop_repartitioned_total{topic}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from pipeline.events.ingest import RawMessage
from pipeline.publish.ports import RecordSender
from pipeline.worker.metrics import WorkerMetrics

T = TypeVar("T")


class Repartitioner:
    """Keeps the records that belong here; re-produces the others to their partition."""

    def __init__(
        self,
        partition_of: Callable[[str], int],
        sender: RecordSender,
        metrics: WorkerMetrics,
    ) -> None:
        self.partition_of = partition_of
        self.sender = sender
        self.metrics = metrics

    async def keep_own(
        self, records: Sequence[tuple[RawMessage, T]], key: Callable[[T], str]
    ) -> list[tuple[RawMessage, T]]:
        """The records on the partition of their key; the rest re-produced (acknowledged)."""
        own: list[tuple[RawMessage, T]] = []
        hops: dict[str, list[tuple[bytes | None, bytes | None]]] = {}
        for message, record in records:
            k = key(record)
            if self.partition_of(k) == message.partition:
                own.append((message, record))
            else:
                hops.setdefault(message.topic, []).append((k.encode(), message.value))
        for topic, hopped in hops.items():
            await self.sender.send(topic, hopped)
            self.metrics.repartitioned.labels(topic).inc(len(hopped))
        return own
