"""Send events, controls and items to Kafka (kafka-python), validated by the workers' parser.

Scripts, the simulator, benchmarks and tests produce through :class:`EventProducer`. Every
message is completed and validated by ``pipeline.events.build`` before it is sent, so a
message the workers would dead-letter fails here instead, loudly, with the same reason
code, and nothing reaches Kafka.

The Kafka connection is opened on the first send, not in ``__init__``: building a producer
works without a broker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError

from pipeline.clock import wall_ms
from pipeline.config import Settings
from pipeline.errors import DeliveryError, StackError
from pipeline.events.build import build_control, build_event, build_item
from pipeline.kafka.options import kafka_client_options
from schemas.control import ControlType
from schemas.events import Event, EventContext, EventType, Item

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_MS = 10_000
"""How long to wait for a broker before failing (kafka-python's default is 30-60 s)."""

ContextArg = Mapping[str, object] | EventContext | None


class ProducerClient(Protocol):
    """The part of ``kafka.KafkaProducer`` used here (tests substitute a fake)."""

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any:
        """Queue one record; return a future with ``add_errback``."""

    def flush(self, timeout: float | None = None) -> None:
        """Block until queued records are acknowledged."""

    def close(self, timeout: float | None = None) -> None:
        """Flush and release connections."""


def kafka_producer(settings: Settings) -> ProducerClient:
    """Connect a ``KafkaProducer``: acks from all in-sync replicas, idempotent, 5 ms linger.

    Raises
    ------
    StackError
        No broker answered within ``CONNECT_TIMEOUT_MS``.
    """
    options = kafka_client_options(settings)
    try:
        client: ProducerClient = KafkaProducer(
            **options,
            client_id=f"{settings.app_id}-producer",
            acks="all",
            linger_ms=5,
            bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
            max_block_ms=CONNECT_TIMEOUT_MS,
        )
    except KafkaError as exc:
        msg = (
            f"no Kafka broker answered at {settings.kafka_bootstrap} ({exc}); start one with"
            " `recloop stack up` or set RECLOOP_KAFKA_BOOTSTRAP"
        )
        raise StackError(msg) from exc
    return client


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
        Opens the Kafka client on first use; defaults to :func:`kafka_producer`.
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
    ) -> str:
        """Send (or replace) a catalogue item; return its ``item_id``."""
        doc: dict[str, object] = {"item_id": item_id, "categories": list(categories)}
        _set_optional(
            doc,
            duration_seconds=duration_seconds,
            published_ts=published_ts,
            creator_id=creator_id,
            title=title,
        )
        return self.send_item(doc)

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
        """Send bytes unvalidated: for tests of what workers do with bad input."""
        self._send(topic, key.encode() if isinstance(key, str) else key, value)

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every queued message to be acknowledged.

        Raises
        ------
        DeliveryError
            If Kafka refused or timed out any message since the previous flush.
        """
        if self._client is not None:
            try:
                self._client.flush(timeout)
            except KafkaError as exc:
                msg = f"flush did not complete within {timeout} s: {exc}"
                raise DeliveryError(msg) from exc
        with self._lock:
            failures, first = self._failures, self._first_failure
            self._failures, self._first_failure = 0, None
        if failures:
            msg = f"{failures} message(s) were not acknowledged by Kafka; first: {first}"
            raise DeliveryError(msg)

    def close(self, timeout: float | None = None) -> None:
        """Flush, then release the connection (a later send reconnects)."""
        client = self._client
        if client is None:
            return
        try:
            self.flush(timeout)
        finally:
            self._client = None
            client.close(timeout)

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

    def _send(self, topic: str, key: bytes | None, value: bytes) -> None:
        if self._client is None:
            self._client = self._factory(self.settings)
        try:
            future = self._client.send(topic, value=value, key=key)
        except KafkaError as exc:
            msg = f"Kafka refused a message for topic={topic}: {exc}"
            raise DeliveryError(msg) from exc
        future.add_errback(self._on_send_error, topic)

    def _on_send_error(self, topic: str, exc: BaseException) -> None:
        # Runs on kafka-python's I/O thread; the error surfaces at the next flush().
        logger.warning("send failed topic=%s error=%r", topic, exc)
        with self._lock:
            self._failures += 1
            if self._first_failure is None:
                self._first_failure = f"topic={topic}: {exc!r}"


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
