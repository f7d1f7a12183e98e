"""Topic names and creation without a broker."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.errors import (
    StackError,
)
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import TopicNames, ensure_topics, topic_names

NOW = 1_700_000_000_000


class FakeFuture:
    def __init__(self) -> None:
        self.errbacks: list[Callable[[BaseException], Any]] = []

    def add_errback(self, fn: Callable[..., Any], *args: Any) -> None:
        self.errbacks.append(lambda exc: fn(*args, exc))

    def fail(self, exc: BaseException) -> None:
        for errback in self.errbacks:
            errback(exc)


class FakeClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.futures: list[FakeFuture] = []
        self.flushes = 0
        self.closed = False

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any:
        assert value is not None
        self.sent.append((topic, key, value))
        self.futures.append(FakeFuture())
        return self.futures[-1]

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class Factory:
    def __init__(self) -> None:
        self.calls = 0
        self.client = FakeClient()

    def __call__(self, settings: Settings) -> FakeClient:
        self.calls += 1
        return self.client


@pytest.fixture
def factory() -> Factory:
    return Factory()


@pytest.fixture
def producer(factory: Factory) -> EventProducer:
    return EventProducer(Settings(), client_factory=factory, clock=lambda: NOW)


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
