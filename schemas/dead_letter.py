"""Dead-letter v1: why an input message was refused, with the exact bytes to replay it.

A worker never drops a message silently and never crashes on one: anything
:func:`schemas.validation.parse_event` refuses goes to ``recloop.events.dlq`` as a
:class:`DeadLetter`. The record keeps the original bytes (base64) so a fixed message can be
replayed byte for byte, and a stable :class:`RejectReason` code so dashboards and alerts can
group failures without parsing free text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from schemas.events import EpochMillis, NonEmptyStr, SchemaVersion, version_field


class RejectReason(StrEnum):
    """Stable codes for refused messages (part of the dead-letter contract: never renamed).

    The first failing check wins, in this order: size, encoding, JSON syntax, top-level
    shape, then the fields in declaration order of the model (``schema_version`` first, so
    a message from a newer producer is reported as such rather than as a pile of field
    errors), then cross-field rules, then the clock.

    Attributes
    ----------
    TOO_LARGE
        The payload is larger than ``Settings.max_event_bytes``; nothing else is looked at.
    NOT_UTF8
        The payload is not valid UTF-8 (JSON text must be).
    NOT_JSON
        Valid UTF-8 but not one JSON document (syntax error, trailing data, empty, BOM).
    NOT_OBJECT
        Valid JSON whose top level is not an object (array, string, number, null).
    MISSING_FIELD
        A required field is absent or null, including ``watch_seconds`` on a ``watch``.
    WRONG_TYPE
        A field has the wrong JSON type (``"ts": "1"``, ``"ts": true``, ``"ts": 1.5``,
        ``"context": []``, an id that is a number).
    UNKNOWN_TYPE
        ``type`` is a string but not ``click``, ``skip`` or ``watch`` (e.g. an event type
        added by a newer producer).
    INVALID_VALUE
        Right type, impossible value: empty id or category, an id or string longer than
        its limit (``schemas.limits``: 256 characters for ids), negative ``ts`` or
        ``context.position``, ``duration_seconds`` of 0, a non-finite number.
    NEGATIVE_DURATION
        ``watch_seconds`` or ``duration_seconds`` below zero.
    FUTURE_TS
        ``ts`` is further ahead of the worker's clock than ``Settings.max_future_ms``
        (usually seconds-vs-milliseconds confusion or a broken producer clock).
    UNSUPPORTED_VERSION
        ``schema_version`` is an integer other than 1: written for a reader this worker is
        not.
    PROCESSING_ERROR
        A valid-looking batch failed twice inside the worker (a bug, not bad input); the
        message is kept here so it can be replayed once the bug is fixed.
    """

    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_VALUE = "invalid_value"
    NEGATIVE_DURATION = "negative_duration"
    FUTURE_TS = "future_ts"
    UNSUPPORTED_VERSION = "unsupported_version"
    PROCESSING_ERROR = "processing_error"


DEAD_LETTER_EXAMPLE: dict[str, Any] = {
    "schema_version": 1,
    "reason": "missing_field",
    "detail": "item_id: Field required",
    "source_topic": "recloop.events",
    "source_partition": 3,
    "source_offset": 10452,
    "original_base64": "eyJ0eXBlIjogImNsaWNrIiwgInVzZXJfaWQiOiAidXNlci00MiJ9",
    "original_text": '{"type": "click", "user_id": "user-42"}',
    "original_size": 39,
    "original_truncated": False,
    "dead_lettered_ts": 1700000000031,
}
"""A dead letter v1 as a worker writes it (the documents' example)."""


class DeadLetter(BaseModel):
    """One refused message on the dead-letter topic (dead-letter v1).

    ``original_base64`` holds the exact bytes that were read, so a fixed message can be
    replayed unchanged. Only a payload larger than ``MAX_ORIGINAL_BYTES`` (which the broker
    could not accept again once base64 inflates it) is cut; ``original_truncated`` and
    ``original_size`` then say so.
    """

    model_config = ConfigDict(
        frozen=True,
        json_schema_serialization_defaults_required=True,
        json_schema_extra={"examples": [DEAD_LETTER_EXAMPLE]},
    )

    schema_version: SchemaVersion = version_field()
    reason: RejectReason = Field(description="Stable code of the first failed check.")
    detail: StrictStr = Field(description="Human-readable explanation (no field values).")
    source_topic: NonEmptyStr = Field(description="Topic the message was read from.")
    source_partition: StrictInt = Field(description="Partition it was read from.")
    source_offset: StrictInt = Field(description="Offset it was read at.")
    original_base64: StrictStr = Field(description="The original bytes, base64 (RFC 4648).")
    original_text: StrictStr | None = Field(
        description="The original as text when it is UTF-8 and short, else null."
    )
    original_size: StrictInt = Field(ge=0, description="Length of the original in bytes.")
    original_truncated: bool = Field(
        False, description="True when original_base64 holds only a prefix of the original."
    )
    dead_lettered_ts: EpochMillis = Field(description="When it was dead-lettered, epoch ms.")
