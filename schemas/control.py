"""Control contract (control v1): what a user or operator asks of the pipeline.

Controls travel on ``recloop.controls``, keyed by user_id, with the same partition count as
the events topic, so a user's controls reach the worker that owns the user's events (Faust
co-partitions topics of equal partition counts).

Types in this version: ``forget`` (delete everything recloop keeps about the user; lists stay
non-personalised until the user returns with a new event).

>>> Control.model_validate_json(
...     b'{"control_id": "c1", "type": "forget", "user_id": "u1", "ts": 1700000000000}'
... ).type
<ControlType.FORGET: 'forget'>
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import EpochMillis, NonEmptyStr, SchemaVersion, version_field


class ControlType(StrEnum):
    """What the control asks for."""

    FORGET = "forget"


class Control(BaseModel):
    """One control message (control v1)."""

    model_config = ConfigDict(frozen=True, extra="ignore", title="control v1")

    schema_version: SchemaVersion = version_field()
    control_id: NonEmptyStr = Field(description="Unique per control.")
    type: ControlType = Field(description="What to do.")
    user_id: NonEmptyStr = Field(description="The user it applies to.")
    ts: EpochMillis = Field(description="When it was requested, epoch milliseconds.")
