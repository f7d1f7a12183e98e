"""The producer validates with the workers' parser before any network use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from pipeline.config import Settings
from pipeline.errors import (
    ConfigError,
    DeliveryError,
    InvalidEventError,
    RecloopError,
    StackError,
)
from pipeline.events.build import build_event, build_item
from pipeline.kafka.options import kafka_client_options
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import TopicNames, ensure_topics, topic_names
from schemas import Event, EventContext, EventType, Item, RejectReason, parse_event

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


# --- build_event: pure ------------------------------------------------------------------------


def test_build_event_fills_id_ts_and_version_and_keeps_extras() -> None:
    event, raw = build_event(
        {"type": "click", "user_id": "u", "item_id": "i", "campaign": "x"}, Settings(), now_ms=NOW
    )
    assert event.ts == NOW and len(event.event_id) == 32 and int(event.event_id, 16) >= 0
    sent = orjson.loads(raw)
    assert sent["schema_version"] == 1 and sent["campaign"] == "x"
    assert parse_event(raw, now_ms=NOW, max_bytes=16_384, max_future_ms=0) == event


def test_build_event_keeps_given_id_and_ts() -> None:
    fields = {"type": "click", "user_id": "u", "item_id": "i", "event_id": "e-7", "ts": 5}
    event, _ = build_event(fields, Settings(), now_ms=NOW)
    assert (event.event_id, event.ts) == ("e-7", 5)


def test_build_event_generates_distinct_ids() -> None:
    fields = {"type": "click", "user_id": "u", "item_id": "i"}
    ids = {build_event(fields, Settings(), now_ms=NOW)[0].event_id for _ in range(100)}
    assert len(ids) == 100


def test_build_event_accepts_a_model_and_a_context_model() -> None:
    model = Event(
        event_id="e", type=EventType.SKIP, user_id="u", item_id="i", ts=NOW, watch_seconds=2
    )
    assert build_event(model, Settings(), now_ms=NOW)[0] == model
    fields = {"type": "click", "user_id": "u", "item_id": "i", "context": EventContext(position=2)}
    event, raw = build_event(fields, Settings(), now_ms=NOW)
    assert event.context == EventContext(position=2)
    assert orjson.loads(raw)["context"] == {"position": 2}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"type": "watch", "user_id": "u", "item_id": "i"}, RejectReason.MISSING_FIELD),
        ({"type": "click", "user_id": "", "item_id": "i"}, RejectReason.INVALID_VALUE),
        ({"type": "click", "user_id": "u", "item_id": "i", "ts": True}, RejectReason.WRONG_TYPE),
        ({"type": "share", "user_id": "u", "item_id": "i"}, RejectReason.UNKNOWN_TYPE),
        (
            {"type": "click", "user_id": "u", "item_id": "i", "ts": NOW * 1000},
            RejectReason.FUTURE_TS,
        ),
        (
            {"type": "skip", "user_id": "u", "item_id": "i", "watch_seconds": -1},
            RejectReason.NEGATIVE_DURATION,
        ),
        (
            {"type": "click", "user_id": "u", "item_id": "i", "blob": "x" * 20_000},
            RejectReason.TOO_LARGE,
        ),
        ({"type": "click", "user_id": "u", "item_id": "i", "x": object()}, RejectReason.WRONG_TYPE),
        (
            {"type": "click", "user_id": "u", "item_id": "i", "schema_version": 2},
            RejectReason.UNSUPPORTED_VERSION,
        ),
    ],
)
def test_build_event_raises_with_the_workers_reason(
    fields: dict[str, Any], reason: RejectReason
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        build_event(fields, Settings(), now_ms=NOW)
    assert caught.value.reason is reason
    assert reason.value in str(caught.value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, RecloopError)


def test_build_item() -> None:
    item, raw = build_item({"item_id": "i", "categories": ("a", "b")}, Settings())
    assert item == Item(item_id="i", categories=("a", "b"))
    assert orjson.loads(raw) == {"schema_version": 1, "item_id": "i", "categories": ["a", "b"]}
    with pytest.raises(InvalidEventError) as caught:
        build_item({"item_id": "i", "categories": "a"}, Settings())
    assert caught.value.reason is RejectReason.WRONG_TYPE


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


# --- connection settings ----------------------------------------------------------------------


def test_client_options_plaintext() -> None:
    options = kafka_client_options(Settings(kafka_bootstrap=" a:9092, b:9092 ,"))
    assert options == {"bootstrap_servers": ["a:9092", "b:9092"], "security_protocol": "PLAINTEXT"}


def test_client_options_sasl_ssl() -> None:
    settings = Settings(
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password=SecretStr("s3cret"),
        kafka_ssl_cafile="/etc/ca.pem",
    )
    options = kafka_client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc", "s3cret")
    assert options["ssl_cafile"] == "/etc/ca.pem"


@pytest.mark.parametrize(
    "overrides",
    [
        {"kafka_bootstrap": " , "},
        {"kafka_security_protocol": "TLS"},
        {"kafka_security_protocol": "SASL_PLAINTEXT"},
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN"},
    ],
)
def test_inconsistent_security_settings_fail_early(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="RECLOOP_KAFKA_"):
        kafka_client_options(Settings(**overrides))


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
