"""Completing, encoding and validating what a producer sends: events, controls, items (pure).

Every message recloop produces (the producer client, the simulator, the HTTP API) goes
through :func:`schemas.validation.parse_event` (or ``parse_control``, ``parse_item``) first,
so a message a worker would dead-letter fails here instead, loudly, with the same reason
code, and nothing reaches Kafka.

>>> from pipeline.config import Settings
>>> event, raw = build_event(
...     {"type": "click", "user_id": "u1", "item_id": "i1"}, Settings(), now_ms=1_000
... )
>>> event.ts, len(event.event_id)
(1000, 32)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TypeVar

import orjson
from pydantic import BaseModel

from pipeline.config import Settings
from pipeline.errors import InvalidEventError
from schemas.control import Control
from schemas.dead_letter import RejectReason
from schemas.events import SCHEMA_VERSION, Event, Item
from schemas.validation import (
    Rejected,
    event_to_bytes,
    item_to_bytes,
    parse_control,
    parse_event,
    parse_item,
)

_M = TypeVar("_M", Event, Item, Control)


def _jsonable(value: object) -> object:
    """``orjson`` hook: nested pydantic models (an ``EventContext``) become plain dicts."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    msg = f"{type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


def _encode(doc: Mapping[str, object]) -> bytes:
    try:
        return orjson.dumps(doc, default=_jsonable)
    except orjson.JSONEncodeError as exc:
        raise InvalidEventError(RejectReason.WRONG_TYPE, str(exc)) from exc


def _accept(result: _M | Rejected) -> _M:
    if isinstance(result, Rejected):
        raise InvalidEventError(result.reason, result.detail)
    return result


def build_event(
    data: Mapping[str, object] | Event, settings: Settings, *, now_ms: int
) -> tuple[Event, bytes]:
    """Complete, encode and validate one event; the pure part of sending it.

    A mapping gets ``event_id`` (uuid4 hex) and ``ts`` (``now_ms``) when they are absent
    or null, and ``schema_version`` when absent; other keys, unknown ones included, are
    sent as given.

    Returns
    -------
    tuple[Event, bytes]
        The parsed event and the exact bytes that were validated (and will be sent).

    Raises
    ------
    InvalidEventError
        With the reason a worker would have dead-lettered the event for.
    """
    raw = event_to_bytes(data) if isinstance(data, Event) else _completed(data, "event_id", now_ms)
    result = parse_event(
        raw,
        now_ms=now_ms,
        max_bytes=settings.max_event_bytes,
        max_future_ms=settings.max_future_ms,
    )
    return _accept(result), raw


def build_control(
    data: Mapping[str, object], settings: Settings, *, now_ms: int
) -> tuple[Control, bytes]:
    """Complete (``control_id``, ``ts``, ``schema_version``), encode and validate a control.

    The same completion as :func:`build_event`, validated by the workers' own
    :func:`schemas.validation.parse_control`.

    Raises
    ------
    InvalidEventError
        With the reason a worker would have dead-lettered the control for.
    """
    raw = _completed(data, "control_id", now_ms)
    return _accept(parse_control(raw, max_bytes=settings.max_event_bytes)), raw


def _completed(data: Mapping[str, object], id_field: str, now_ms: int) -> bytes:
    """Encode ``data`` with its id (uuid4 hex) and ``ts`` filled in when absent or null."""
    doc = dict(data)
    if doc.get(id_field) is None:
        doc[id_field] = uuid.uuid4().hex
    if doc.get("ts") is None:
        doc["ts"] = now_ms
    doc.setdefault("schema_version", SCHEMA_VERSION)
    return _encode(doc)


def build_item(data: Mapping[str, object] | Item, settings: Settings) -> tuple[Item, bytes]:
    """Encode and validate one item (``schema_version`` added when absent); see build_event."""
    if isinstance(data, Item):
        raw = item_to_bytes(data)
    else:
        doc = dict(data)
        doc.setdefault("schema_version", SCHEMA_VERSION)
        raw = _encode(doc)
    return _accept(parse_item(raw, max_bytes=settings.max_event_bytes)), raw
