"""``EventProducer``: validated, keyed sends; failures surface at flush."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from pipeline.config import Settings
from pipeline.errors import (
    DeliveryError,
    InvalidEventError,
)
from pipeline.kafka.producer import EventProducer

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


# --- EventProducer with a fake client --------------------------------------------------------


def test_constructing_opens_no_connection(factory: Factory) -> None:
    EventProducer(Settings(), client_factory=factory)
    EventProducer(Settings(kafka_bootstrap="127.0.0.1:1"))  # real factory, still no I/O
    assert factory.calls == 0


def test_invalid_events_never_reach_the_client(producer: EventProducer, factory: Factory) -> None:
    with pytest.raises(InvalidEventError):
        producer.send_event({"type": "watch", "user_id": "u", "item_id": "i"})
    with pytest.raises(InvalidEventError):
        producer.click("", "i")
    with pytest.raises(InvalidEventError):
        producer.watch("u", "i", -5)
    with pytest.raises(InvalidEventError):
        producer.item("i", ["a", ""])
    assert factory.calls == 0


def test_typed_helpers_send_keyed_validated_events(
    producer: EventProducer, factory: Factory
) -> None:
    s = producer.settings
    click_id = producer.click("u1", "i1", context={"device": "web"})
    skip_id = producer.skip("u2", "i1", watch_seconds=1.5, event_id="skip-1", ts=NOW - 1)
    watch_id = producer.watch("u1", "i2", 30, duration_seconds=60)
    item_id = producer.item("i3", ["drama"], duration_seconds=90, title="T")
    assert skip_id == "skip-1" and item_id == "i3"
    sent = factory.client.sent
    assert [(topic, key) for topic, key, _ in sent] == [
        (s.topic_events, b"u1"),
        (s.topic_events, b"u2"),
        (s.topic_events, b"u1"),
        (s.topic_items, b"i3"),
    ]
    events = [orjson.loads(value) for _, _, value in sent[:3]]
    assert [e["event_id"] for e in events] == [click_id, "skip-1", watch_id]
    assert events[0]["context"] == {"device": "web"} and events[0]["ts"] == NOW
    assert events[1]["watch_seconds"] == 1.5 and "duration_seconds" not in events[1]
    assert (events[2]["watch_seconds"], events[2]["duration_seconds"]) == (30, 60)
    assert orjson.loads(sent[3][2]) == {
        "schema_version": 1,
        "item_id": "i3",
        "categories": ["drama"],
        "duration_seconds": 90,
        "title": "T",
    }
    assert factory.calls == 1  # one lazily opened client, reused


def test_send_raw_is_not_validated(producer: EventProducer, factory: Factory) -> None:
    producer.send_raw("t", "k", b"\xff not json")
    producer.send_raw("t", None, b"")
    assert factory.client.sent == [("t", b"k", b"\xff not json"), ("t", None, b"")]


def test_failed_deliveries_surface_at_flush(producer: EventProducer, factory: Factory) -> None:
    producer.click("u", "i")
    producer.click("u", "i")
    for future in factory.client.futures:
        future.fail(TimeoutError("no ack"))
    with pytest.raises(DeliveryError, match="2 message"):
        producer.flush()
    producer.flush()  # reported once


def test_context_manager_flushes_and_closes(factory: Factory) -> None:
    with EventProducer(Settings(), client_factory=factory) as producer:
        producer.click("u", "i")
    assert factory.client.flushes == 1 and factory.client.closed


def test_close_without_sends_is_a_no_op(factory: Factory) -> None:
    EventProducer(Settings(), client_factory=factory).close()
    assert factory.calls == 0
