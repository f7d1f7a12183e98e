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

from pipeline.config import Settings
from pipeline.errors import InvalidEventError, StackError
from pipeline.events.build import build_control, build_event
from pipeline.kafka.producer import ProducerClient, kafka_producer
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
    """Sends a request's records and waits for each acknowledgement (kafka-python client).

    The client is opened on first use (a serve process starts and answers reads while the
    broker is away). ``send`` runs in a worker thread because kafka-python may block on
    metadata or a full buffer; acknowledgements arrive on the client's I/O thread and are
    handed to the event loop.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: ProducerClient | None = None
        self._lock = threading.Lock()

    def _producer(self) -> ProducerClient:
        with self._lock:
            if self._client is None:
                self._client = kafka_producer(self.settings)
            return self._client

    def _send_all(
        self,
        topic: str,
        records: Sequence[tuple[bytes, bytes]],
        loop: asyncio.AbstractEventLoop,
    ) -> list[asyncio.Future[None]]:
        client = self._producer()
        acks: list[asyncio.Future[None]] = []
        for key, value in records:
            ack: asyncio.Future[None] = loop.create_future()
            future = client.send(topic, value=value, key=key)
            future.add_callback(_resolve, loop, ack)
            future.add_errback(_reject, loop, ack)
            acks.append(ack)
        return acks

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
        try:
            acks = await asyncio.to_thread(self._send_all, topic, records, loop)
            await asyncio.wait_for(asyncio.gather(*acks), ACK_TIMEOUT_SECONDS)
        except StackError:
            raise
        except Exception as exc:  # kafka errors, timeouts: the client retries the request
            msg = f"Kafka did not acknowledge every record of the request: {exc!r}"
            raise StackError(msg) from exc

    def close(self) -> None:
        """Flush what is queued and close the connection."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close(5)


def _resolve(loop: asyncio.AbstractEventLoop, ack: asyncio.Future[None], _meta: object) -> None:
    loop.call_soon_threadsafe(_set_result, ack)


def _reject(loop: asyncio.AbstractEventLoop, ack: asyncio.Future[None], exc: BaseException) -> None:
    log.warning("record not acknowledged error=%r", exc)
    loop.call_soon_threadsafe(_set_exception, ack, exc)


def _set_result(ack: asyncio.Future[None]) -> None:
    if not ack.done():
        ack.set_result(None)


def _set_exception(ack: asyncio.Future[None], exc: BaseException) -> None:
    if not ack.done():
        ack.set_exception(exc)
