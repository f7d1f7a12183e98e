"""Send events, controls and items to Kafka (confluent-kafka), validated by the workers' parser.

Scripts, the simulator, benchmarks, tests and ``recloop serve`` produce through one client,
:func:`kafka_producer`: librdkafka with acks from all in-sync replicas, idempotence, and
Kafka's Java-compatible ``murmur2_random`` partitioner, so a key lands on the partition
Faust and every other Kafka client would choose (``pipeline.kafka.partitioning``).

:class:`EventProducer` completes and validates every message with ``pipeline.events.build``
before it is sent, so a message the workers would dead-letter fails here instead, loudly,
with the same reason code, and nothing reaches Kafka. The Kafka client is created on the
first send, not in ``__init__``, and librdkafka connects in the background: building a
producer works without a broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from pipeline.clock import wall_ms
from pipeline.config import Settings
from pipeline.errors import ConfigError, DeliveryError
from pipeline.events.build import build_control, build_event, build_item
from pipeline.kafka.options import client_config
from pipeline.kafka.partitioning import LIBRDKAFKA_PARTITIONER
from schemas.control import ControlType
from schemas.events import Event, EventContext, EventType, Item

logger = logging.getLogger(__name__)

DELIVERY_TIMEOUT_MS = 30_000
"""How long librdkafka tries to deliver a record (retries included) before failing it."""
QUEUE_FULL_WAIT_SECONDS = 0.05
"""Pause while librdkafka's local queue is full, serving acknowledgements meanwhile."""

ContextArg = Mapping[str, object] | EventContext | None
DeliveryCallback = Callable[[KafkaError | None, Message], None]


class ProducerClient(Protocol):
    """The part of ``confluent_kafka.Producer`` used here (tests substitute a fake)."""

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Queue one record (``BufferError`` when the local queue is full)."""

    def poll(self, timeout: float = -1) -> int:
        """Serve acknowledgements (delivery callbacks) and logs for up to ``timeout`` s."""

    def flush(self, timeout: float = -1) -> int:
        """Wait until queued records are acknowledged; returns how many are still queued."""


def producer_config(
    settings: Settings,
    *,
    client_id: str | None = None,
    delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
    linger_ms: int = 5,
) -> dict[str, Any]:
    """The librdkafka settings of every recloop producer.

    >>> config = producer_config(Settings())
    >>> config["partitioner"], config["acks"], config["enable.idempotence"]
    ('murmur2_random', 'all', True)
    """
    return {
        **client_config(settings, client_id=client_id or f"{settings.app_id}-producer"),
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": LIBRDKAFKA_PARTITIONER,
        "linger.ms": linger_ms,
        "message.timeout.ms": delivery_timeout_ms,
    }


def kafka_producer(settings: Settings, **options: Any) -> Producer:
    """A confluent-kafka ``Producer`` with :func:`producer_config` (no I/O until a send).

    Raises
    ------
    ConfigError
        librdkafka refused the configuration.
    """
    try:
        return Producer(producer_config(settings, **options))
    except KafkaException as exc:
        msg = f"the Kafka producer configuration was refused: {exc}"
        raise ConfigError(msg) from exc


class EventProducer:
    """Validated, keyed producer of events (by ``user_id``) and items (by ``item_id``).

    Keying events by user keeps each user's events in order on one partition, which is
    what lets a worker own a user's features without locks. Sends are asynchronous;
    :meth:`flush` (also called by :meth:`close` and on leaving a ``with`` block) waits for
    the acknowledgements and raises :class:`~pipeline.errors.DeliveryError` if any failed.
    The Kafka record timestamp is the send time, not ``ts``: replaying an old data set with
    old record timestamps would make the broker's retention delete it at once.

    Parameters
    ----------
    settings
        Bootstrap servers, security, topic names and validation limits.
    client_factory
        Creates the Kafka client on first use; defaults to :func:`kafka_producer`.
    clock
        Epoch-ms clock used to fill ``ts`` and to check it is not in the future.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client_factory: Callable[[Settings], ProducerClient] = kafka_producer,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.settings = settings
        self._factory = client_factory
        self._clock = clock
        self._client: ProducerClient | None = None
        self._lock = threading.Lock()
        self._failures = 0
        self._first_failure: str | None = None

    # --- typed helpers --------------------------------------------------------------------

    def click(
        self,
        user_id: str,
        item_id: str,
        *,
        ts: int | None = None,
        context: ContextArg = None,
        event_id: str | None = None,
    ) -> str:
        """Send a click; return its ``event_id``."""
        return self.send_event(_event_doc(EventType.CLICK, user_id, item_id, ts, context, event_id))

    def skip(
        self,
        user_id: str,
        item_id: str,
        *,
        watch_seconds: float | None = None,
        duration_seconds: float | None = None,
        ts: int | None = None,
        context: ContextArg = None,
        event_id: str | None = None,
    ) -> str:
        """Send a skip (optionally after ``watch_seconds``); return its ``event_id``."""
        doc = _event_doc(EventType.SKIP, user_id, item_id, ts, context, event_id)
        _set_optional(doc, watch_seconds=watch_seconds, duration_seconds=duration_seconds)
        return self.send_event(doc)

    def watch(
        self,
        user_id: str,
        item_id: str,
        watch_seconds: float,
        *,
        duration_seconds: float | None = None,
        ts: int | None = None,
        context: ContextArg = None,
        event_id: str | None = None,
    ) -> str:
        """Send a watch of ``watch_seconds``; return its ``event_id``."""
        doc = _event_doc(EventType.WATCH, user_id, item_id, ts, context, event_id)
        doc["watch_seconds"] = watch_seconds
        _set_optional(doc, duration_seconds=duration_seconds)
        return self.send_event(doc)

    def item(
        self,
        item_id: str,
        categories: Sequence[str],
        *,
        duration_seconds: float | None = None,
        published_ts: int | None = None,
        creator_id: str | None = None,
        title: str | None = None,
        available: bool | None = None,
        available_from_ts: int | None = None,
        available_until_ts: int | None = None,
    ) -> str:
        """Send (or replace) a catalogue item; return its ``item_id``.

        ``available`` and the window are item v1.1 (``available=False`` withdraws it).
        """
        doc: dict[str, object] = {"item_id": item_id, "categories": list(categories)}
        _set_optional(
            doc,
            duration_seconds=duration_seconds,
            published_ts=published_ts,
            creator_id=creator_id,
            title=title,
            available=available,
            available_from_ts=available_from_ts,
            available_until_ts=available_until_ts,
        )
        return self.send_item(doc)

    def remove_item(self, item_id: str) -> None:
        """Send a tombstone for the item (a null value under its key): it is withdrawn."""
        self._send(self.settings.topic_items, item_id.encode(), None)

    # --- generic sends --------------------------------------------------------------------

    def send_event(self, event: Mapping[str, object] | Event) -> str:
        """Validate and send one event (see :func:`build_event`); return its ``event_id``.

        Raises
        ------
        InvalidEventError
            Before anything is sent, if a worker would dead-letter the event.
        """
        parsed, raw = build_event(event, self.settings, now_ms=self._clock())
        self._send(self.settings.topic_events, parsed.user_id.encode(), raw)
        return parsed.event_id

    def send_item(self, item: Mapping[str, object] | Item) -> str:
        """Validate and send one item (see :func:`build_item`); return its ``item_id``."""
        parsed, raw = build_item(item, self.settings)
        self._send(self.settings.topic_items, parsed.item_id.encode(), raw)
        return parsed.item_id

    def forget(self, user_id: str, *, control_id: str | None = None) -> str:
        """Ask the workers to delete everything kept about ``user_id``; returns the control id."""
        return self.control(ControlType.FORGET, user_id, control_id=control_id)

    def control(
        self,
        type_: ControlType | str,
        user_id: str,
        *,
        control_id: str | None = None,
        **fields: Any,
    ) -> str:
        """Validate and send one control v1 (mute, not_interested, ...); returns its id.

        Sent on the controls topic keyed by user_id, so it reaches the worker that owns the
        user's events (see ``schemas.control``). ``fields`` are the type's own fields
        (``category=...``, ``item_id=...``, ``categories=[...]``).
        """
        doc = {"control_id": control_id, "type": str(type_), "user_id": user_id, **fields}
        parsed, raw = build_control(doc, self.settings, now_ms=self._clock())
        self._send(self.settings.topic_controls, user_id.encode(), raw)
        return parsed.control_id

    def send_raw(self, topic: str, key: bytes | str | None, value: bytes) -> None:
        """Send bytes unvalidated: for tests of bad input and for re-driving dead letters."""
        self._send(topic, key.encode() if isinstance(key, str) else key, value)

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every queued message to be acknowledged (or failed).

        Without ``timeout`` this waits at most about ``DELIVERY_TIMEOUT_MS``: librdkafka
        fails a record it could not deliver by then.

        Raises
        ------
        DeliveryError
            If Kafka refused or timed out any message since the previous flush, or some
            were still unacknowledged after ``timeout``.
        """
        remaining = 0
        if self._client is not None:
            remaining = self._client.flush(-1 if timeout is None else timeout)
        with self._lock:
            failures, first = self._failures, self._first_failure
            self._failures, self._first_failure = 0, None
        if remaining:
            msg = f"{remaining} message(s) still unacknowledged after {timeout} s"
            raise DeliveryError(msg)
        if failures:
            msg = f"{failures} message(s) were not acknowledged by Kafka; first: {first}"
            raise DeliveryError(msg)

    def close(self, timeout: float | None = None) -> None:
        """Flush, then release the client (a later send creates a new one)."""
        if self._client is None:
            return
        try:
            self.flush(timeout)
        finally:
            self._client = None

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------

    def _send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        if self._client is None:
            self._client = self._factory(self.settings)
        client = self._client
        deadline = time.monotonic() + DELIVERY_TIMEOUT_MS / 1000
        while True:
            try:
                client.produce(topic, value, key, on_delivery=self._on_delivery)
                break
            except BufferError:
                # librdkafka's queue is full: let it drain (serving acks), then retry
                if time.monotonic() > deadline:
                    msg = f"Kafka's send queue stayed full for topic={topic}; is the broker up?"
                    raise DeliveryError(msg) from None
                client.poll(QUEUE_FULL_WAIT_SECONDS)
            except KafkaException as exc:
                msg = f"Kafka refused a message for topic={topic}: {exc}"
                raise DeliveryError(msg) from exc
        client.poll(0)  # serve the acknowledgements that arrived meanwhile

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        # Runs inside poll()/flush() on the sending thread; the error surfaces at flush().
        if error is None:
            return
        topic = message.topic()
        logger.warning("send failed topic=%s error=%s", topic, error)
        with self._lock:
            self._failures += 1
            if self._first_failure is None:
                self._first_failure = f"topic={topic}: {error}"


def _event_doc(
    kind: EventType,
    user_id: str,
    item_id: str,
    ts: int | None,
    context: ContextArg,
    event_id: str | None,
) -> dict[str, object]:
    doc: dict[str, object] = {"type": kind.value, "user_id": user_id, "item_id": item_id}
    _set_optional(doc, ts=ts, context=context, event_id=event_id)
    return doc


def _set_optional(doc: dict[str, object], **fields: object) -> None:
    doc.update((name, value) for name, value in fields.items() if value is not None)
