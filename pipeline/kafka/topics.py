"""Create recloop's Kafka topics, idempotently, with confluent-kafka's ``AdminClient``.

Topics are created explicitly rather than left to broker auto-creation, which would give
them the broker's default partition count: partitions cap how many workers can share the
load, and they cannot be reduced later.

The recommendations topic is created *compacted* (``RECOMMENDATIONS_CONFIG``): it keeps the
latest list per user, and the tombstone a forget writes removes a forgotten user's lists
within ``max.compaction.lag.ms`` (README "Privacy"). The events, items and controls topics
must have ``topic_partitions`` partitions: a user's partition names their Redis index keys
and decides which records a worker re-produces elsewhere, so a mismatch is refused.

Examples
--------
>>> from pipeline.config import Settings
>>> topic_names(Settings()).dlq
'recloop.events.dlq'
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pipeline.config import Settings
from pipeline.errors import StackError
from pipeline.kafka.options import client_config

logger = logging.getLogger(__name__)

ADMIN_TIMEOUT_MS = 10_000
"""Upper bound for connecting and for each admin request; a local broker answers in ms."""

RECOMMENDATIONS_CONFIG = {
    "cleanup.policy": "compact",
    "max.compaction.lag.ms": str(24 * 3_600_000),
}
"""Topic configs of ``recloop.recommendations`` when recloop creates it: compacted (latest
list per user), and a superseded or tombstoned record is eligible for compaction within a
day (the broker's ``delete.retention.ms``, one day by default, then drops the tombstone)."""


class TopicNames(NamedTuple):
    """The topics of the pipeline, in data-flow order."""

    events: str
    items: str
    dlq: str
    recommendations: str
    controls: str


def topic_names(settings: Settings) -> TopicNames:
    """Topic names from ``settings`` (``RECLOOP_TOPIC_*``)."""
    return TopicNames(
        events=settings.topic_events,
        items=settings.topic_items,
        dlq=settings.topic_dlq,
        recommendations=settings.topic_recommendations,
        controls=settings.topic_controls,
    )


def ensure_topics(settings: Settings, *, timeout_ms: int = ADMIN_TIMEOUT_MS) -> None:
    """Create any missing topic with ``topic_partitions`` and ``topic_replication``.

    Existing topics are left alone (safe to call from every worker at start-up, and
    concurrently). Returns once every created topic has a leader for each partition, so a
    producer can use it at once.

    Raises
    ------
    StackError
        The broker is unreachable or refused to create a topic (e.g. a replication factor
        larger than the number of brokers), or an existing events, items or controls topic
        has another partition count than ``topic_partitions``.
    """
    names = list(dict.fromkeys(topic_names(settings)))
    admin = AdminClient(client_config(settings, client_id=f"{settings.app_id}-admin"))
    timeout = timeout_ms / 1000
    try:
        existing = _partition_counts(admin, timeout)
    except KafkaException as exc:
        msg = (
            f"no Kafka broker answered at {settings.kafka_bootstrap} ({exc}); start one with"
            " `recloop stack up` or set RECLOOP_KAFKA_BOOTSTRAP"
        )
        raise StackError(msg) from exc
    try:
        _create_missing(admin, names, existing, settings, timeout)
    except KafkaException as exc:
        msg = f"could not create topics {names} at {settings.kafka_bootstrap}: {exc}"
        raise StackError(msg) from exc
    finally:
        admin.poll(0)  # hand librdkafka's queued log lines to logging


def _partition_counts(admin: AdminClient, timeout: float) -> dict[str, list[int]]:
    """Topic -> leaders of its partitions (-1: none yet), from one metadata request."""
    meta = admin.list_topics(timeout=timeout)
    return {
        name: [p.leader for _, p in sorted(topic.partitions.items())]
        for name, topic in meta.topics.items()
        if topic.error is None
    }


def _create_missing(
    admin: AdminClient,
    names: list[str],
    existing: dict[str, list[int]],
    settings: Settings,
    timeout: float,
) -> None:
    keyed = {settings.topic_events, settings.topic_items, settings.topic_controls}
    for name in names:
        count = len(existing.get(name, ()))
        if not count or count == settings.topic_partitions:
            continue
        if name in keyed:
            msg = (
                f"topic {name} has {count} partitions but RECLOOP_TOPIC_PARTITIONS is "
                f"{settings.topic_partitions}: set it to {count} (users' partitions, and so "
                "their Redis keys, follow it)"
            )
            raise StackError(msg)
        logger.warning(
            "existing topic has a different partition count, left as is"
            " topic=%s partitions=%d configured=%d",
            name,
            count,
            settings.topic_partitions,
        )
    missing = [name for name in names if name not in existing]
    if not missing:
        logger.debug("topics already exist topics=%s", ",".join(names))
        return
    new = [
        NewTopic(
            n,
            settings.topic_partitions,
            settings.topic_replication,
            config=RECOMMENDATIONS_CONFIG if n == settings.topic_recommendations else {},
        )
        for n in missing
    ]
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    failures = []
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # a concurrent creator won the race
            failures.append(f"{name}: {error}")
    if failures:
        msg = (
            f"Kafka refused to create topics ({'; '.join(failures)}); check"
            " RECLOOP_TOPIC_PARTITIONS and RECLOOP_TOPIC_REPLICATION (<= number of brokers)"
        )
        raise StackError(msg)
    _wait_for_leaders(admin, missing, timeout)
    logger.info(
        "created topics topics=%s partitions=%d replication=%d",
        ",".join(missing),
        settings.topic_partitions,
        settings.topic_replication,
    )


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Block until every partition of ``names`` has a leader (or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    while True:
        leaders = _partition_counts(admin, timeout)
        if all(leaders.get(n) and min(leaders[n]) >= 0 for n in names):
            return
        if time.monotonic() > deadline:
            msg = f"created topics have no leader after {timeout:.0f} s: {names}"
            raise StackError(msg)
        time.sleep(0.1)
