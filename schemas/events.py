"""Input contracts: interaction events (event v1) and catalogue items (item v1).

These pydantic models are the single source of truth: workers validate with them
(:mod:`schemas.validation`), the producer validates with them before sending, and the JSON
Schema files in ``schemas/json/`` are generated from them for producers in other languages.

Scalars are strict (``"ts": "1"`` or ``"ts": true`` is an error, never coerced) because a
coerced value hides a broken producer until its data has skewed the features. Unknown
fields are ignored so that a newer producer can add fields without breaking older workers.

Examples
--------
>>> Event.model_validate_json(
...     b'{"event_id": "e1", "type": "watch", "user_id": "u1", "item_id": "i1",'
...     b' "ts": 1700000000000, "watch_seconds": 42.5, "experiment": "ignored"}'
... ).watch_seconds
42.5
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.limits import MAX_CATEGORIES, Category, ContextValue, Identifier, Title

NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
"""A non-empty string that is not an id (ids are :data:`schemas.limits.Identifier`)."""

MAX_INT64 = 2**63 - 1
"""Largest integer accepted anywhere: what Kafka clients, Redis and orjson can all carry."""

EpochMillis = Annotated[StrictInt, Field(ge=0, le=MAX_INT64)]
"""A point in time as integer epoch milliseconds (UTC); bools and floats are refused."""

Seconds = Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)]
"""A length of time watched, in seconds (JSON integers are accepted as numbers)."""

PositiveSeconds = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]
"""The full length of an item, in seconds; zero would make completion undefined."""

SCHEMA_VERSION = 1
"""Version of every contract in this package; a change that breaks readers bumps it."""

UNSUPPORTED_VERSION_ERROR = "unsupported_version"
"""Pydantic error type raised for a ``schema_version`` other than 1."""

WATCH_SECONDS_REQUIRED_ERROR = "watch_seconds_required"
"""Pydantic error type raised for a ``watch`` event without ``watch_seconds``."""

EMPTY_WINDOW_ERROR = "empty_availability_window"
"""Pydantic error type raised for an item whose ``available_until_ts`` precedes its start."""


def check_version_1(value: int) -> int:
    """Refuse a ``schema_version`` other than 1 with its own error type.

    ``Literal[1]`` would accept ``true`` and ``1.0``, and its error could not be told apart
    from a type error, so the check is explicit.
    """
    if value != SCHEMA_VERSION:
        msg = "schema_version {version} is not supported; this reader understands 1"
        raise PydanticCustomError(UNSUPPORTED_VERSION_ERROR, msg, {"version": value})
    return value


SchemaVersion = Annotated[StrictInt, AfterValidator(check_version_1)]


def version_field() -> Any:
    """A fresh ``schema_version`` field (default 1, ``const: 1`` in the JSON Schema)."""
    return Field(
        SCHEMA_VERSION,
        description="Contract version; optional on input, always written on output.",
        json_schema_extra={"const": SCHEMA_VERSION},
    )


class EventType(StrEnum):
    """What the user did with an item."""

    CLICK = "click"
    SKIP = "skip"
    WATCH = "watch"


class EventContext(BaseModel):
    """Where the interaction happened; every field optional, unknown keys ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        json_schema_extra={
            "examples": [{"device": "tv", "locale": "en-GB", "surface": "home", "position": 2}]
        },
    )

    device: ContextValue | None = Field(None, description="e.g. ios, android, web, tv.")
    locale: ContextValue | None = Field(None, description="e.g. en-GB.")
    surface: ContextValue | None = Field(None, description="UI surface, e.g. home, search.")
    position: Annotated[StrictInt, Field(ge=0, le=MAX_INT64)] | None = Field(
        None, description="0-based slot of the item in the list shown."
    )


_WATCH_REQUIRES_WATCH_SECONDS: dict[str, Any] = {
    "allOf": [
        {
            "if": {"properties": {"type": {"const": "watch"}}, "required": ["type"]},
            "then": {
                "required": ["watch_seconds"],
                "properties": {"watch_seconds": {"type": "number", "minimum": 0}},
            },
        }
    ]
}


EVENT_EXAMPLE: dict[str, Any] = {
    "schema_version": 1,
    "type": "watch",
    "event_id": "0b7e4c1e-5f7a-4d1c-9a59-2f0d3c7f8e21",
    "user_id": "user-42",
    "item_id": "film-1138",
    "ts": 1700000000000,
    "watch_seconds": 4860,
    "duration_seconds": 5400,
    "context": {"device": "tv", "locale": "en-GB", "surface": "home", "position": 2},
}
"""A valid event v1 (the documents' example)."""


class Event(BaseModel):
    """One user-item interaction (event v1), keyed by ``user_id`` on the events topic.

    ``watch`` requires ``watch_seconds``; ``skip`` may carry it (how long before the
    skip). ``watch_seconds`` and ``duration_seconds`` are validated on every type, so a
    ``click`` that carries them is accepted, but readers only use them on ``watch`` and
    ``skip``. ``watch_seconds`` may exceed ``duration_seconds`` (rewatching, seeking).
    """

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        json_schema_extra={**_WATCH_REQUIRES_WATCH_SECONDS, "examples": [EVENT_EXAMPLE]},
    )

    # Declared first: fields are checked in declaration order, and a newer version should
    # be reported as such rather than as whatever field it renamed.
    schema_version: SchemaVersion = version_field()
    type: EventType = Field(description="click, skip or watch.")
    event_id: Identifier = Field(description="Unique per event; duplicates are ignored.")
    user_id: Identifier = Field(description="Pseudonymous user id.")
    item_id: Identifier = Field(description="Id of the item interacted with.")
    ts: EpochMillis = Field(description="Event time, integer epoch milliseconds.")
    watch_seconds: Seconds | None = Field(
        None, description="Seconds watched; required for watch, optional for skip."
    )
    duration_seconds: PositiveSeconds | None = Field(
        None, description="Full length of the item in seconds, if the client knows it."
    )
    context: EventContext | None = Field(None, description="Where it happened.")

    @model_validator(mode="after")
    def _watch_has_watch_seconds(self) -> Event:
        if self.type is EventType.WATCH and self.watch_seconds is None:
            msg = "a watch event requires watch_seconds (>= 0)"
            raise PydanticCustomError(WATCH_SECONDS_REQUIRED_ERROR, msg)
        return self


class Item(BaseModel):
    """A catalogue entry (item v1), keyed by ``item_id`` on the items topic.

    The latest message for an ``item_id`` replaces earlier ones. Categories drive the
    per-user affinities; an item with none can still be recommended as trending.

    **Availability (item v1.1, optional fields).** ``available: false`` withdraws an item
    (rights expired, taken down, a live channel off air); ``available_from_ts`` /
    ``available_until_ts`` schedule it (it is a candidate while ``from <= now < until``).
    A tombstone (null value under the item's key) withdraws it too. Readers of v1.0 ignore
    the fields, and a v1.0 message means "available", so the change breaks no one.

    >>> Item.model_validate({"item_id": "c1", "categories": [], "available": False}).available
    False
    """

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "schema_version": 1,
                    "item_id": "film-1138",
                    "categories": ["Comedy", "Family"],
                    "duration_seconds": 5400,
                    "published_ts": 1700000000000,
                    "creator_id": "studio-7",
                    "title": "The Long Weekend",
                }
            ]
        },
    )

    schema_version: SchemaVersion = version_field()
    item_id: Identifier = Field(description="Unique item id.")
    categories: tuple[Category, ...] = Field(
        max_length=MAX_CATEGORIES, description="Category labels, may be empty."
    )
    duration_seconds: PositiveSeconds | None = Field(None, description="Length in seconds.")
    published_ts: EpochMillis | None = Field(None, description="Publication time, epoch ms.")
    creator_id: Identifier | None = Field(None, description="Id of the creator.")
    title: Title | None = Field(None, description="Display title.")
    available: StrictBool = Field(
        True,
        description="False withdraws the item from every list (added in v1.1).",
    )
    available_from_ts: EpochMillis | None = Field(
        None, description="Not a candidate before this time, epoch ms (added in v1.1)."
    )
    available_until_ts: EpochMillis | None = Field(
        None, description="Withdrawn from this time on, epoch ms (added in v1.1)."
    )

    @model_validator(mode="after")
    def _window_is_ordered(self) -> Item:
        start, end = self.available_from_ts, self.available_until_ts
        if start is not None and end is not None and end < start:
            msg = "available_until_ts must not be before available_from_ts"
            raise PydanticCustomError(EMPTY_WINDOW_ERROR, msg)
        return self
