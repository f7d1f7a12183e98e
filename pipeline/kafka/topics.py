"""Create recloop's Kafka topics, idempotently, with kafka-python's admin client.

Topics are created explicitly rather than left to broker auto-creation, which would give
them the broker's default partition count: partitions cap how many workers can share the
load, and they cannot be reduced later.

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
    concurrently); one whose partition count differs from the setting is logged, since
    changing it would move keys to other partitions. Returns once every created topic has
    a leader for each partition, so a producer can use it at once.

    Raises
    ------
    StackError
        The broker is unreachable or refused to create a topic (e.g. a replication factor
        larger than the number of brokers).
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
    result = admin.create_topics(
        {name: dict(spec) for name in missing}, timeout_ms=timeout_ms, raise_errors=False
    )
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
    for topic in admin.describe_topics(names):
        count = len(topic.get("partitions") or [])
        if count and count != settings.topic_partitions:
            logger.warning(
                "existing topic has a different partition count, left as is"
                " topic=%s partitions=%d configured=%d",
                topic.get("name"),
                count,
                settings.topic_partitions,
            )
