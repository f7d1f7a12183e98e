"""Output contract: a refreshed recommendation list for one user (recommendation v1).

Lists are published to ``recloop.recommendations`` keyed by ``user_id``; a reader keeps the
newest ``generated_ts`` per user. ``trigger_event_id`` and ``trigger_ts`` tie a list to the
event that caused it (``generated_ts - trigger_ts`` is how far the list trails event time;
the workers time their own freshness from when they received the event, since a late event
says nothing about their speed); both are null for a background refresh (stale list, model
update).

Examples
--------
>>> rec = Recommendation(
...     user_id="u1",
...     items=[RecommendedItem(item_id="i9", score=0.92, reason="affinity:comedy")],
...     generated_ts=1700000000250,
...     trigger_event_id="e1",
...     trigger_ts=1700000000000,
...     model_version="linucb-3",
... )
>>> rec.personalized, rec.items[0].item_id
(True, 'i9')
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from schemas.events import EpochMillis, NonEmptyStr, SchemaVersion, version_field
from schemas.limits import Identifier

Score = Annotated[float, Field(allow_inf_nan=False)]
"""A ranking score. Lax so numpy scalars are accepted; NaN would serialize as null."""


RECOMMENDATION_EXAMPLE: dict[str, Any] = {
    "schema_version": 1,
    "user_id": "user-42",
    "items": [
        {"item_id": "film-2001", "score": 0.913, "reason": "because you watched The Long Weekend"},
        {"item_id": "film-0451", "score": 0.388, "reason": "because you like Comedy"},
    ],
    "generated_ts": 1700000000412,
    "trigger_event_id": "0b7e4c1e-5f7a-4d1c-9a59-2f0d3c7f8e21",
    "trigger_ts": 1700000000000,
    "model_version": "knn/snapshot-12",
    "personalized": True,
    "experiment": "ranker-2024",
    "variant": "treatment",
}
"""A recommendation v1 as a worker writes it (the documents' example; no null field, since
FastAPI's OpenAPI rendering drops nulls from examples)."""


class RecommendedItem(BaseModel):
    """One entry of a list, best first."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_serialization_defaults_required=True,
        json_schema_extra={"examples": [RECOMMENDATION_EXAMPLE["items"][0]]},
    )

    item_id: Identifier = Field(description="Recommended item.")
    score: Score = Field(description="Ranking score; only the order within a list matters.")
    reason: StrictStr = Field(
        description="Why it is here, e.g. affinity:<category>, trending, similar:<item>."
    )


class Recommendation(BaseModel):
    """The current list for one user (recommendation v1); every field is always written."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_serialization_defaults_required=True,
        json_schema_extra={"examples": [RECOMMENDATION_EXAMPLE]},
    )

    schema_version: SchemaVersion = version_field()
    user_id: Identifier = Field(description="Whom the list is for.")
    items: tuple[RecommendedItem, ...] = Field(description="Ranked items, best first.")
    generated_ts: EpochMillis = Field(description="When the list was computed, epoch ms.")
    trigger_event_id: Identifier | None = Field(
        None,
        description="Event (or control_id) that caused this refresh; null for a background one.",
    )
    trigger_ts: EpochMillis | None = Field(
        None, description="Event time of the trigger, epoch ms; null for a background refresh."
    )
    model_version: NonEmptyStr = Field(description="Ranker and model snapshot that scored it.")
    personalized: StrictBool = Field(
        True,
        description="False when the list is not personalised (unknown, opted out, control arm).",
    )
    experiment: NonEmptyStr | None = Field(
        None, description="A/B experiment the user is in; null when in none (added in v1.1)."
    )
    variant: NonEmptyStr | None = Field(
        None, description="The user's arm of that experiment; null when in none (added in v1.1)."
    )
