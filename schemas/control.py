"""Control contract (control v1): what a user tells the pipeline, beside what they do.

Controls travel on ``recloop.controls``, keyed by user_id, with the same partition count as
the events topic, so a user's controls reach the worker that owns the user's events (Faust
co-partitions topics of equal partition counts). Controls always win over the model.

===========================  ===========================================================
type                         fields
===========================  ===========================================================
``mute`` / ``unmute``        exactly one of ``category``, ``creator_id``, ``item_id``
``not_interested``           ``item_id``, optional ``reason``
``declare_interests``        ``categories`` (list, may be empty to withdraw)
``personalization_off``      nothing more: non-personalised lists, no behavioural features
``personalization_on``       nothing more
``forget``                   nothing more: delete everything kept about the user
===========================  ===========================================================

>>> Control.model_validate_json(
...     b'{"control_id": "c1", "type": "mute", "user_id": "u1", "ts": 1, "category": "News"}'
... ).category
'News'
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.events import EpochMillis, SchemaVersion, version_field
from schemas.limits import MAX_CATEGORIES, Category, Identifier, Reason

CONTROL_TARGET_MISSING_ERROR = "control_target_missing"
"""Pydantic error type: a control lacks the field its type requires."""

CONTROL_TARGET_AMBIGUOUS_ERROR = "control_target_ambiguous"
"""Pydantic error type: mute/unmute names more than one target."""


class ControlType(StrEnum):
    """What the control asks for."""

    MUTE = "mute"
    UNMUTE = "unmute"
    NOT_INTERESTED = "not_interested"
    DECLARE_INTERESTS = "declare_interests"
    PERSONALIZATION_OFF = "personalization_off"
    PERSONALIZATION_ON = "personalization_on"
    FORGET = "forget"


_TARGETS = ("category", "creator_id", "item_id")


def _one_of_targets() -> dict[str, Any]:
    return {"oneOf": [{"required": [t]} for t in _TARGETS]}


_PER_TYPE_RULES: dict[str, Any] = {
    "allOf": [
        {
            "if": {"properties": {"type": {"enum": ["mute", "unmute"]}}, "required": ["type"]},
            "then": _one_of_targets(),
        },
        {
            "if": {"properties": {"type": {"const": "not_interested"}}, "required": ["type"]},
            "then": {"required": ["item_id"]},
        },
        {
            "if": {"properties": {"type": {"const": "declare_interests"}}, "required": ["type"]},
            "then": {"required": ["categories"]},
        },
    ]
}


class Control(BaseModel):
    """One control message (control v1)."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        json_schema_extra={
            **_PER_TYPE_RULES,
            "examples": [
                {
                    "schema_version": 1,
                    "type": "mute",
                    "control_id": "5d0c2f8a-1b7e-4f43-8a8e-0f5b1c9d2e11",
                    "user_id": "user-42",
                    "ts": 1700000000000,
                    "category": "Horror",
                },
                {
                    "schema_version": 1,
                    "type": "declare_interests",
                    "control_id": "9c3e1a77-2d64-4b0e-b1f5-6a2b7c8d9e10",
                    "user_id": "user-42",
                    "ts": 1700000000000,
                    "categories": ["Comedy", "Documentary"],
                },
            ],
        },
    )

    schema_version: SchemaVersion = version_field()
    type: ControlType = Field(description="What to do.")
    control_id: Identifier = Field(description="Unique per control.")
    user_id: Identifier = Field(description="The user it applies to.")
    ts: EpochMillis = Field(description="When it was requested, epoch milliseconds.")
    category: Category | None = Field(None, description="mute/unmute target.")
    creator_id: Identifier | None = Field(None, description="mute/unmute target.")
    item_id: Identifier | None = Field(None, description="mute/unmute/not_interested target.")
    reason: Reason | None = Field(None, description="not_interested: why, free text.")
    categories: tuple[Category, ...] | None = Field(
        None,
        max_length=MAX_CATEGORIES,
        description="declare_interests: the categories the user chose.",
    )

    @model_validator(mode="after")
    def _fields_match_type(self) -> Control:
        if self.type in (ControlType.MUTE, ControlType.UNMUTE):
            named = [t for t in _TARGETS if getattr(self, t) is not None]
            if not named:
                msg = "mute/unmute needs exactly one of category, creator_id, item_id"
                raise PydanticCustomError(CONTROL_TARGET_MISSING_ERROR, msg)
            if len(named) > 1:
                msg = "mute/unmute takes exactly one of category, creator_id, item_id"
                raise PydanticCustomError(CONTROL_TARGET_AMBIGUOUS_ERROR, msg)
        elif self.type is ControlType.NOT_INTERESTED and self.item_id is None:
            msg = "not_interested needs item_id"
            raise PydanticCustomError(CONTROL_TARGET_MISSING_ERROR, msg)
        elif self.type is ControlType.DECLARE_INTERESTS and self.categories is None:
            msg = "declare_interests needs categories (a list, empty to withdraw)"
            raise PydanticCustomError(CONTROL_TARGET_MISSING_ERROR, msg)
        return self
