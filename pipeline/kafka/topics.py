"""Create recloop's Kafka topics, idempotently, with kafka-python's admin client.

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
from typing import Any, NamedTuple

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from pipeline.config import Settings
from pipeline.errors import StackError
from pipeline.kafka.options import kafka_client_options

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
    try:
        admin = KafkaAdminClient(
            **kafka_client_options(settings),
            client_id=f"{settings.app_id}-admin",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
    except KafkaError as exc:
        msg = (
            f"no Kafka broker answered at {settings.kafka_bootstrap} ({exc}); start one with"
            " `recloop stack up` or set RECLOOP_KAFKA_BOOTSTRAP"
        )
        raise StackError(msg) from exc
    try:
        _create_missing(admin, names, settings, timeout_ms)
    except KafkaError as exc:
        msg = f"could not create topics {names} at {settings.kafka_bootstrap}: {exc}"
        raise StackError(msg) from exc
    finally:
        admin.close()


def _create_missing(admin: Any, names: list[str], settings: Settings, timeout_ms: int) -> None:
    existing = set(admin.list_topics())
    _warn_on_partition_mismatch(admin, [name for name in names if name in existing], settings)
    missing = [name for name in names if name not in existing]
    if not missing:
        logger.debug("topics already exist topics=%s", ",".join(names))
        return
    spec = {
        "num_partitions": settings.topic_partitions,
        "replication_factor": settings.topic_replication,
    }
    specs = {
        name: {**spec, "configs": RECOMMENDATIONS_CONFIG}
        if name == settings.topic_recommendations
        else dict(spec)
        for name in missing
    }
    result = admin.create_topics(specs, timeout_ms=timeout_ms, raise_errors=False)
    failures = []
    for topic in result.get("topics", []):
        code = topic.get("error_code", 0)
        if code in (0, TopicAlreadyExistsError.errno):  # a concurrent creator won the race
            continue
        failures.append(f"{topic.get('name')}: {topic.get('error_message') or code}")
    if failures:
        msg = (
            f"Kafka refused to create topics ({'; '.join(failures)}); check"
            " RECLOOP_TOPIC_PARTITIONS and RECLOOP_TOPIC_REPLICATION (<= number of brokers)"
        )
        raise StackError(msg)
    admin.wait_for_topics(missing, timeout_ms=timeout_ms)
    logger.info(
        "created topics topics=%s partitions=%d replication=%d",
        ",".join(missing),
        settings.topic_partitions,
        settings.topic_replication,
    )


def _warn_on_partition_mismatch(admin: Any, names: list[str], settings: Settings) -> None:
    if not names:
        return
    keyed = {settings.topic_events, settings.topic_items, settings.topic_controls}
    for topic in admin.describe_topics(names):
        count = len(topic.get("partitions") or [])
        if not count or count == settings.topic_partitions:
            continue
        name = topic.get("name")
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
