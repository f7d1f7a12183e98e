"""Re-driving dead letters: which letters may go back to their topic, with which key.

A dead letter (dead-letter v1) keeps the exact bytes that were read. Once the cause is fixed
(a worker bug behind ``processing_error``, a clock behind ``future_ts``, an upgrade behind
``unsupported_version``), ``recloop dlq redrive --reason R`` sends those bytes again to
their source topic. That is safe to repeat: the worker de-duplicates events by
``event_id``, and controls and items are idempotent by nature.

This module decides, without I/O, what is re-sent: only originals that the workers' own
parser accepts now (else they would be dead-lettered again) unless ``force`` is given, and
never a truncated original (its bytes are not all there). The key is the one a producer
uses: ``user_id`` for events and controls, ``item_id`` for items.

>>> import base64
>>> doc = {"reason": "processing_error", "source_topic": "ev", "source_partition": 0,
...        "source_offset": 7, "original_base64": base64.b64encode(b"{}").decode(),
...        "original_truncated": False}
>>> letter = parse_letter(doc)
>>> plan = plan_redrive([letter], "processing_error", {"ev": "events"}, Settings(), now_ms=0)
>>> plan[0].why
'the original is not a valid message (missing_field); --force sends it anyway'
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from pipeline.config import Settings
from schemas.validation import Rejected, parse_control, parse_event, parse_item

Kind = Literal["events", "controls", "items"]


@dataclass(frozen=True, slots=True)
class Letter:
    """The parts of a dead letter that re-driving needs."""

    reason: str
    source_topic: str
    source_partition: int
    source_offset: int
    original: bytes | None
    """The original bytes; None when truncated or not decodable."""
    dead_lettered_ts: int = 0


@dataclass(frozen=True, slots=True)
class Redrive:
    """A letter to send again: its original bytes, keyed like a producer would key them."""

    letter: Letter
    topic: str
    key: bytes | None


@dataclass(frozen=True, slots=True)
class Skip:
    """A letter of the requested reason that is not sent, and why."""

    letter: Letter
    why: str


def parse_letter(doc: Any) -> Letter | None:
    """A dead-letter v1 document as a :class:`Letter` (None when it is not one)."""
    if not isinstance(doc, dict):
        return None
    try:
        original: bytes | None = None
        if not doc.get("original_truncated"):
            original = base64.b64decode(str(doc["original_base64"]), validate=True)
        return Letter(
            reason=str(doc["reason"]),
            source_topic=str(doc["source_topic"]),
            source_partition=int(doc["source_partition"]),
            source_offset=int(doc["source_offset"]),
            original=original,
            dead_lettered_ts=int(doc.get("dead_lettered_ts") or 0),
        )
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None


def source_kinds(settings: Settings) -> dict[str, Kind]:
    """Topic name -> what it carries, for the topics a worker reads (and dead-letters)."""
    return {
        settings.topic_events: "events",
        settings.topic_controls: "controls",
        settings.topic_items: "items",
    }


def validate(kind: Kind, raw: bytes, settings: Settings, now_ms: int) -> Rejected | None:
    """Why the workers would refuse ``raw`` now (None: they accept it)."""
    limit = settings.max_event_bytes
    parsed: object
    if kind == "events":
        parsed = parse_event(
            raw, now_ms=now_ms, max_bytes=limit, max_future_ms=settings.max_future_ms
        )
    elif kind == "controls":
        parsed = parse_control(raw, max_bytes=limit)
    else:
        parsed = parse_item(raw, max_bytes=limit)
    return parsed if isinstance(parsed, Rejected) else None


def key_of(kind: Kind, raw: bytes) -> bytes | None:
    """The record key a producer gives this message (None when the bytes do not say)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    field = "item_id" if kind == "items" else "user_id"
    value = doc.get(field) if isinstance(doc, dict) else None
    return value.encode() if isinstance(value, str) and value else None


def plan_redrive(
    letters: Iterable[Letter],
    reason: str,
    sources: Mapping[str, Kind],
    settings: Settings,
    *,
    now_ms: int,
    force: bool = False,
) -> list[Redrive | Skip]:
    """What to do with each letter of ``reason`` (letters of other reasons are left out)."""
    plan: list[Redrive | Skip] = []
    for letter in letters:
        if letter.reason != reason:
            continue
        kind = sources.get(letter.source_topic)
        if kind is None:
            plan.append(Skip(letter, f"source topic {letter.source_topic!r} is not an input"))
            continue
        if letter.original is None:
            plan.append(Skip(letter, "the original was truncated: its bytes are not all kept"))
            continue
        refused = validate(kind, letter.original, settings, now_ms)
        if refused is not None and not force:
            why = (
                f"the original is not a valid message ({refused.reason.value});"
                " --force sends it anyway"
            )
            plan.append(Skip(letter, why))
            continue
        plan.append(Redrive(letter, letter.source_topic, key_of(kind, letter.original)))
    return plan
