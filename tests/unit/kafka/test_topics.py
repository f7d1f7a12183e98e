"""Topic names and creation without a broker."""

from __future__ import annotations

import time

import pytest

from pipeline.config import Settings
from pipeline.errors import (
    StackError,
)
from pipeline.kafka.topics import TopicNames, ensure_topics, topic_names

NOW = 1_700_000_000_000


# --- topics -------------------------------------------------------------------------------------


def test_topic_names() -> None:
    names = topic_names(Settings(topic_events="ev", topic_dlq="ev.dlq"))
    assert names == TopicNames(
        "ev", "recloop.items", "ev.dlq", "recloop.recommendations", "recloop.controls"
    )
    assert len(set(names)) == 5


def test_ensure_topics_without_a_broker_fails_fast_and_clearly() -> None:
    started = time.monotonic()
    with pytest.raises(StackError, match="recloop stack up"):
        ensure_topics(Settings(kafka_bootstrap="127.0.0.1:1"), timeout_ms=500)
    assert time.monotonic() - started < 5
