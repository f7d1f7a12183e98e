"""Consumer lag, from the broker's view: end offset minus committed offset, per partition.

The one place lag is computed: the worker exports it (``recloop_consumer_lag``), ``recloop
serve``'s overview shows it, the benchmarks wait on it. Asking the broker (not the
consumer's own position) means a stalled worker's lag keeps growing instead of freezing at
its last batch, and every reader agrees on the number.

``partition_lag`` is the pure rule; :class:`KafkaAdmin` asks the broker (confluent-kafka's
``AdminClient``: blocking, thread-safe; call it from a thread in asyncio code).

>>> partition_lag({("ev", 0): 120, ("ev", 1): 7}, {("ev", 0): 100}, {("ev", 1): 2})
{('ev', 0): 20, ('ev', 1): 5}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec

from pipeline.config import Settings
from pipeline.kafka.options import client_config

log = logging.getLogger(__name__)

Partition = tuple[str, int]
"""``(topic, partition)``: plain data, so the pure functions need no client types."""

REQUEST_TIMEOUT_SECONDS = 5.0
RETRIES = 3
RETRY_PAUSE_SECONDS = 0.2
LAG_EXPORT_SECONDS = 5.0
"""How often a worker refreshes ``recloop_consumer_lag`` (three small broker requests)."""


def partition_lag(
    ends: Mapping[Partition, int],
    committed: Mapping[Partition, int],
    starts: Mapping[Partition, int] | None = None,
) -> dict[Partition, int]:
    """Records each partition's group has not committed yet.

    A partition the group never committed on is counted from its first offset still in the
    log (``starts``, 0 when unknown): the group will read all of it.
    """
    starts = starts or {}
    out: dict[Partition, int] = {}
    for tp, end in sorted(ends.items()):
        done = committed.get(tp)
        if done is None or done < 0:
            done = starts.get(tp, 0)
        out[tp] = max(0, end - done)
    return out


@dataclass(slots=True)
class GroupStatus:
    """What the broker knows about a consumer group and the topics it reads."""

    members: int = 0
    state: str = "unknown"
    lag: dict[Partition, int] = field(default_factory=dict)
    end_offsets: dict[str, int] = field(default_factory=dict)

    @property
    def total_lag(self) -> int:
        """Lag summed over every partition."""
        return sum(self.lag.values())


class KafkaAdmin:
    """Offsets, group state and metadata from the broker (one lazily opened ``AdminClient``).

    Every method blocks for at most a few request timeouts and raises
    ``confluent_kafka.KafkaException`` when the broker does not answer.
    """

    def __init__(self, settings: Settings, *, client_id: str | None = None) -> None:
        self.settings = settings
        self._client_id = client_id or f"{settings.app_id}-admin"
        self._admin: AdminClient | None = None
        self._consumer: tuple[str, Consumer] | None = None

    @property
    def admin(self) -> AdminClient:
        """The client, opened on first use (no I/O until a request)."""
        if self._admin is None:
            self._admin = AdminClient(client_config(self.settings, client_id=self._client_id))
        return self._admin

    def partitions(self, topics: Iterable[str]) -> list[Partition]:
        """Every partition of the ``topics`` that exist (one metadata request)."""
        wanted = set(topics)
        self.admin.poll(0)  # hand librdkafka's queued log lines to logging
        meta = self.admin.list_topics(timeout=REQUEST_TIMEOUT_SECONDS)
        return sorted(
            (name, p)
            for name, topic in meta.topics.items()
            if name in wanted and topic.error is None
            for p in topic.partitions
        )

    def offsets(
        self, partitions: Sequence[Partition], *, earliest: bool = False
    ) -> dict[Partition, int]:
        """Log-end offsets of ``partitions`` (first offsets with ``earliest``).

        A retriable error (a leader that just moved, a topic created a moment ago whose
        leaders the client does not know yet) is retried a few times before it is raised.
        """
        if not partitions:
            return {}
        spec: OffsetSpec = OffsetSpec.earliest() if earliest else OffsetSpec.latest()  # type: ignore[no-untyped-call]
        attempt = 0
        while True:
            futures = self.admin.list_offsets(
                {TopicPartition(t, p): spec for t, p in partitions},
                request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
            try:
                return {
                    (tp.topic, tp.partition): int(f.result().offset) for tp, f in futures.items()
                }
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                if attempt == RETRIES or not getattr(error, "retriable", lambda: False)():
                    raise
                attempt += 1
                time.sleep(RETRY_PAUSE_SECONDS * attempt)

    def committed(self, group: str, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """Offsets ``group`` committed on ``partitions`` (those without a commit omitted).

        Asked through a consumer of ``group`` that never subscribes (so it never joins the
        group or takes a partition), not ``AdminClient.list_consumer_group_offsets``: on an
        offset-fetch error such as "coordinator load in progress" (a broker that just
        started, a coordinator that moved) librdkafka 2.16's admin path dereferences the
        consumer-group handle an admin client does not have, and the process dies (SIGSEGV).
        """
        if not partitions:
            return {}
        consumer = self._group_consumer(group)
        found = consumer.committed(
            [TopicPartition(t, p) for t, p in partitions], timeout=REQUEST_TIMEOUT_SECONDS
        )
        return {
            (tp.topic, tp.partition): int(tp.offset)
            for tp in found
            if tp.offset >= 0 and tp.error is None
        }

    def _group_consumer(self, group: str) -> Consumer:
        if self._consumer is None or self._consumer[0] != group:
            if self._consumer is not None:
                self._consumer[1].close()
            config = {
                **client_config(self.settings, client_id=f"{self._client_id}-offsets"),
                "group.id": group,
                "enable.auto.commit": False,
            }
            self._consumer = (group, Consumer(config))
        return self._consumer[1]

    def lag(self, group: str, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """``partition_lag`` of ``group`` on ``partitions``, as the broker sees it now."""
        ends = self.offsets(partitions)
        committed = self.committed(group, partitions)
        unstarted = [tp for tp in partitions if tp not in committed]
        starts = self.offsets(unstarted, earliest=True) if unstarted else {}
        return partition_lag(ends, committed, starts)

    def describe_group(self, group: str) -> tuple[str, int]:
        """The group's state (``stable``, ``empty``, ``preparing_rebalance``...) and member count.

        librdkafka decodes only the members' assignments, never their subscription metadata,
        so a group with a custom assignor (Faust's) is described without complaint.
        """
        futures = self.admin.describe_consumer_groups(
            [group], request_timeout=REQUEST_TIMEOUT_SECONDS
        )
        desc: Any = futures[group].result()
        state = getattr(desc.state, "name", str(desc.state)).lower()
        return state, len(desc.members or ())

    def group_status(
        self, group: str, lag_topics: Sequence[str], topics: Sequence[str]
    ) -> GroupStatus:
        """Members, state and lag of ``group`` on ``lag_topics``; end offsets of ``topics``."""
        every = self.partitions({*lag_topics, *topics})
        ends = self.offsets(every)
        status = GroupStatus()
        for (topic, _), end in ends.items():
            status.end_offsets[topic] = status.end_offsets.get(topic, 0) + end
        mine = [tp for tp in every if tp[0] in set(lag_topics)]
        committed = self.committed(group, mine)
        unstarted = [tp for tp in mine if tp not in committed]
        starts = self.offsets(unstarted, earliest=True) if unstarted else {}
        status.lag = partition_lag({tp: ends[tp] for tp in mine}, committed, starts)
        try:
            status.state, status.members = self.describe_group(group)
        except KafkaException as exc:  # lag is still right without the group's description
            log.debug("describe group failed group=%s error=%r", group, exc)
        return status

    def close(self) -> None:
        """Drop the clients (librdkafka closes the admin's connections when it is collected)."""
        self._admin = None
        if self._consumer is not None:
            self._consumer[1].close()
            self._consumer = None
