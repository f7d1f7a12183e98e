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


class FakeMessage:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


class FakeClient:
    """confluent-kafka's Producer surface: produce queues, poll/flush serve callbacks."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.pending: list[tuple[Callable[..., Any], str]] = []
        self.outcome: BaseException | None = None
        self.full = 0  # produce() raises BufferError this many times first
        self.polls = 0
        self.flushes = 0

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: Callable[..., Any] | None = None,
    ) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        assert value is not None and on_delivery is not None
        self.sent.append((topic, key, value))
        self.pending.append((on_delivery, topic))

    def _serve(self) -> None:
        pending, self.pending = self.pending, []
        for callback, topic in pending:
            callback(self.outcome, FakeMessage(topic))

    def poll(self, timeout: float = -1) -> int:
        self.polls += 1
        if self.outcome is not None:
            return 0  # failures surface later, at flush
        self._serve()
        return 0

    def flush(self, timeout: float = -1) -> int:
        self.flushes += 1
        self._serve()
        return 0


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
    factory.client.outcome = TimeoutError("Local: Message timed out")
    producer.click("u", "i")
    producer.click("u", "i")
    with pytest.raises(DeliveryError, match="2 message.*timed out"):
        producer.flush()
    producer.flush()  # reported once


def test_a_full_queue_waits_for_room(producer: EventProducer, factory: Factory) -> None:
    factory.client.full = 3
    producer.click("u", "i")
    assert len(factory.client.sent) == 1 and factory.client.polls >= 3


def test_the_real_client_is_configured_for_kafkas_partitioner() -> None:
    from pipeline.kafka.producer import producer_config

    config = producer_config(Settings(app_id="a"))
    assert config["partitioner"] == "murmur2_random"
    assert (config["acks"], config["enable.idempotence"]) == ("all", True)
    assert config["client.id"] == "a-producer"


def test_context_manager_flushes_and_closes(factory: Factory) -> None:
    with EventProducer(Settings(), client_factory=factory) as producer:
        producer.click("u", "i")
    assert factory.client.flushes == 1 and factory.client.sent


def test_close_without_sends_is_a_no_op(factory: Factory) -> None:
    EventProducer(Settings(), client_factory=factory).close()
    assert factory.calls == 0
