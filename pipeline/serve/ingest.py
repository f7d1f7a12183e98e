"""Events and controls over HTTP: validate a whole request, then produce all of it, or nothing.

A request body is one JSON object or an array of at most ``Settings.api_max_batch``. Every
element goes through the producer's own validation (:func:`pipeline.kafka.producer.build_event`
and :func:`~pipeline.kafka.producer.build_control`, which are the workers' parsers), so the API
refuses exactly what a worker would dead-letter, with the same reason codes. Nothing is
sent until every element passed; then every record is sent and the request is answered
``202`` only once the broker acknowledged each of them (``acks=all``).

Each request waits for its own records' futures, not for a producer-wide flush, so one
client's failed record is never reported to another client and a slow request does not
hold up the others.

>>> from pipeline.config import Settings
>>> batch = validate_batch([{"type": "click", "user_id": "u", "item_id": "i"}, 3],
...                        "events", Settings(), now_ms=1_000)
>>> [(e.index, e.reason) for e in batch.errors]
[(1, 'not_object')]
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from confluent_kafka import KafkaError, Message, Producer

from pipeline.config import Settings
from pipeline.errors import InvalidEventError, StackError
from pipeline.events.build import build_control, build_event
from pipeline.kafka.producer import kafka_producer
from schemas.dead_letter import RejectReason

log = logging.getLogger(__name__)

Kind = Literal["events", "controls"]
ACK_TIMEOUT_SECONDS = 15.0
"""Longest a request waits for the broker's acknowledgements before answering 503."""


@dataclass(frozen=True, slots=True)
class ElementError:
    """Why one element of a request was refused (``index`` is its array position)."""

    index: int | None
    reason: str
    detail: str


@dataclass(slots=True)
class Batch:
    """A validated request: ``(key, value)`` records ready to send, or the errors."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    errors: list[ElementError] = field(default_factory=list)


class TooLargeError(Exception):
    """The request is over the documented limits (answered ``413``)."""


def elements_of(body: bytes, settings: Settings) -> tuple[list[Any], bool]:
    """The JSON elements of a request body and whether it was an array.

    Raises
    ------
    InvalidEventError
        The body is not UTF-8 JSON (``not_json``) or not an object or array.
    TooLargeError
        An array longer than ``api_max_batch``.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"the body is not one JSON document: {exc}"
        raise InvalidEventError(RejectReason.NOT_JSON, msg) from exc
    if isinstance(doc, list):
        if len(doc) > settings.api_max_batch:
            msg = f"{len(doc)} elements; at most {settings.api_max_batch} per request"
            raise TooLargeError(msg)
        return doc, True
    if isinstance(doc, dict):
        return [doc], False
    msg = "the body must be a JSON object or an array of objects"
    raise InvalidEventError(RejectReason.NOT_OBJECT, msg)


def validate_batch(
    elements: Sequence[Any], kind: Kind, settings: Settings, *, now_ms: int
) -> Batch:
    """Validate every element (all of them, to report every error at once)."""
    batch = Batch()
    for index, element in enumerate(elements):
        if not isinstance(element, dict):
            msg = f"element is a JSON {type(element).__name__}, not an object"
            batch.errors.append(ElementError(index, RejectReason.NOT_OBJECT.value, msg))
            continue
        try:
            if kind == "events":
                event, raw = build_event(element, settings, now_ms=now_ms)
                key, ident = event.user_id, event.event_id
            else:
                control, raw = build_control(element, settings, now_ms=now_ms)
                key, ident = control.user_id, control.control_id
        except InvalidEventError as exc:
            batch.errors.append(ElementError(index, exc.reason.value, exc.detail))
            continue
        batch.records.append((key.encode(), raw))
        batch.ids.append(ident)
    return batch


class AckingSender:
    """Sends a request's records and waits for each acknowledgement (confluent-kafka).

    The producer is created on first use and connects in the background, so a serve process
    starts and answers reads while the broker is away. ``produce`` only queues (it never
    blocks), so it runs on the event loop; a thread polls the producer, which runs the
    delivery callbacks, and each request's future is resolved once, when its last record
    is acknowledged: one wake-up of the loop per request, not per record.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Producer | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def _producer(self) -> Producer:
        with self._lock:
            if self._client is None:
                timeout_ms = int(ACK_TIMEOUT_SECONDS * 1000)
                client = kafka_producer(
                    self.settings,
                    client_id=f"{self.settings.app_id}-serve",
                    delivery_timeout_ms=timeout_ms,
                )
                self._poller = threading.Thread(
                    target=self._poll, args=(client,), name="kafka-acks", daemon=True
                )
                self._client = client
                self._poller.start()
            return self._client

    def _poll(self, client: Producer) -> None:
        while not self._stop.is_set():
            client.poll(0.1)

    async def send(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Send every record; return once all are acknowledged.

        Raises
        ------
        StackError
            A record was refused or not acknowledged within ``ACK_TIMEOUT_SECONDS``.
        """
        if not records:
            return
        loop = asyncio.get_running_loop()
        client = self._producer()
        acks = _RequestAcks(loop, len(records))
        deadline = loop.time() + ACK_TIMEOUT_SECONDS
        try:
            for key, value in records:
                while True:
                    try:
                        client.produce(topic, value, key, on_delivery=acks.on_delivery)
                        break
                    except BufferError:  # the local queue is full: let librdkafka drain it
                        if loop.time() > deadline:
                            raise
                        await asyncio.sleep(0.01)
            await asyncio.wait_for(acks.done, deadline - loop.time())
        except Exception as exc:  # kafka errors, timeouts: the client retries the request
            msg = f"Kafka did not acknowledge every record of the request: {exc!r}"
            raise StackError(msg) from exc

    def close(self) -> None:
        """Flush what is queued, stop the poller and drop the client."""
        with self._lock:
            client, self._client = self._client, None
            poller, self._poller = self._poller, None
        if client is None:
            return
        self._stop.set()
        if poller is not None:
            poller.join(2.0)
        client.flush(5)


class _RequestAcks:
    """Counts one request's acknowledgements on the polling thread; resolves once."""

    __slots__ = ("done", "error", "loop", "remaining")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self.loop = loop
        self.remaining = count
        self.error: str | None = None
        self.done: asyncio.Future[None] = loop.create_future()

    def on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None and self.error is None:
            self.error = str(error)
            log.warning("record not acknowledged error=%s", error)
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if self.done.done():
            return
        if self.error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(StackError(self.error))
