"""Response bodies of API v1 as pydantic models: they document ``/openapi.json``.

Handlers build plain dicts and encode them with orjson (faster than validating a model per
request); the schemathesis test checks that what they send matches these models.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from schemas.dead_letter import DEAD_LETTER_EXAMPLE, DeadLetter
from schemas.recommendation import RECOMMENDATION_EXAMPLE, Recommendation


def example(*docs: Any) -> ConfigDict:
    """A model config whose JSON Schema carries ``docs`` as ``examples``.

    For the OpenAPI document and the clients generated from it; ``tests/api`` validates
    each example against its schema.
    """
    return ConfigDict(json_schema_extra={"examples": list(docs)})


STATS = {"interactions": 212.0, "skips": 31.0, "watches": 150.0, "skip_rate": 0.146,
         "mean_completion": 0.71, "popularity": 96.4}  # fmt: skip
ITEM = {"item_id": "film-1138", "categories": ["Comedy", "Family"], "title": "The Long Weekend",
        "creator_id": "studio-7", "duration_seconds": 5400.0, "published_ts": 1700000000000,
        "stats": STATS, "trending_rank": 3, "available": True, "available_from_ts": None,
        "available_until_ts": 1700086400000}  # fmt: skip
POINT = {"ts": 1700000002000, "events_per_s": 118.5, "events_per_s_by_type": {"click": 60.0},
         "dead_letters_per_s": 0.0, "dead_letters_by_reason": {}, "lists_per_s": 52.0,
         "event_to_list_p50_ms": 41.0, "event_to_list_p99_ms": 380.0, "consumer_lag": 12,
         "event_loop_lag_ms": 8.5,
         "workers_alive": 2, "group_state": "stable", "workers_metrics_answering": 2,
         "active_users_1m": 311, "kafka_ok": True}  # fmt: skip


class ErrorBody(BaseModel):
    """Any refused request (400, 401, 403, 404, 413, 415, 503)."""

    model_config = example(
        {"error": "not_found", "detail": "recloop keeps nothing about this user"}
    )

    error: str = Field(
        description="Stable code: host_not_allowed, unauthorized, forbidden, "
        "origin_not_allowed, not_found, too_large, unsupported_media_type, unavailable, ..."
    )
    detail: str = Field(description="What was wrong and what to do.")


class ElementError(BaseModel):
    """Why one element of a request was refused."""

    model_config = example(
        {"index": 1, "reason": "missing_field", "detail": "item_id: Field required"}
    )

    index: int | None = Field(
        description="Position in the request array (0 for a single object); null when the "
        "error is about the request as a whole (a query parameter, a body that is not JSON)."
    )
    reason: str = Field(
        description="Dead-letter reason code (missing_field, future_ts, ...) or invalid_value."
    )
    detail: str = Field(description="Which field was wrong and how.")


class InvalidBody(BaseModel):
    """422: nothing of the request was accepted; every error is listed."""

    model_config = example(
        {
            "error": "invalid",
            "detail": "1 of 2 element(s) invalid; nothing was produced",
            "errors": [
                {"index": 1, "reason": "missing_field", "detail": "item_id: Field required"}
            ],
        }
    )

    error: str = Field(description="Always 'invalid'.")
    detail: str
    errors: list[ElementError]


class Accepted(BaseModel):
    """202: every record was acknowledged by the broker."""

    model_config = example({"accepted": 1, "ids": ["0b7e4c1e-5f7a-4d1c-9a59-2f0d3c7f8e21"]})

    accepted: int = Field(description="Number of records produced.")
    ids: list[str] = Field(description="event_id / control_id of each, in request order.")


class ForgetRequested(Accepted):
    """200 once the worker applied the forget; 202 when it was not confirmed in time."""

    model_config = example(
        {"accepted": 1, "ids": ["0b7e4c1e-5f7a-4d1c-9a59-2f0d3c7f8e21"], "applied": True}
    )

    applied: bool = Field(
        description="Whether the owning worker applied the forget before the response: its "
        "forget marker is stored and no per-user key is left. `false` (with `202`) when "
        "`wait` was 0 or ran out: the forget still happens, `GET /v1/users/{user_id}` says "
        "`404` once it has."
    )


class Health(BaseModel):
    """The process is up."""

    model_config = example({"status": "ok"})

    status: str


class Ready(BaseModel):
    """Whether Redis and the broker answer."""

    model_config = example({"ready": True, "redis": True, "kafka": True})

    ready: bool
    redis: bool
    kafka: bool


class HistoryEntry(BaseModel):
    """One of the user's last interactions (newest first)."""

    model_config = example(
        {
            "item_id": "film-1138",
            "ts": 1700000000000,
            "type": "watch",
            "weight": 0.87,
            "completion": 0.9,
        }
    )

    item_id: str
    ts: int
    type: str
    weight: float
    completion: float | None


class ItemSummary(BaseModel):
    """What the catalogue says about an item."""

    model_config = example(
        {"item_id": "film-1138", "categories": ["Comedy", "Family"], "title": "The Long Weekend"}
    )

    item_id: str
    categories: list[str]
    title: str | None


class UserView(BaseModel):
    """What ``recloop explain`` shows: list, signals, segments, controls, experiment arm."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "user_id": "user-42",
                    "list": RECOMMENDATION_EXAMPLE,
                    "personalized": True,
                    "experiment": {"name": "ranker-2024", "variant": "treatment"},
                    "signals": {"recent_positives": [["film-1138", 0.87]], "skips": []},
                    "segments": {"lifecycle": "active", "locale": "en-GB"},
                    "controls": {"muted_categories": ["Horror"]},
                    "features": {"n_events": "12", "top_categories": '["Comedy"]'},
                    "stored_keys": {"recloop:user:{user-42}:features": 2591990},
                    "history": [
                        {
                            "item_id": "film-1138",
                            "ts": 1700000000000,
                            "type": "watch",
                            "weight": 0.87,
                            "completion": 0.9,
                        }
                    ],
                    "items": {
                        "film-1138": {
                            "item_id": "film-1138",
                            "categories": ["Comedy"],
                            "title": "The Long Weekend",
                        }
                    },
                }
            ]
        },
    )

    user_id: str
    latest_list: Recommendation | None = Field(
        alias="list", description="The latest list the pipeline wrote."
    )
    personalized: bool
    experiment: dict[str, str] | None
    signals: dict[str, Any]
    segments: dict[str, str]
    controls: dict[str, Any]
    features: dict[str, str]
    stored_keys: dict[str, int] = Field(description="Per-user keys and seconds to expiry.")
    history: list[HistoryEntry]
    items: dict[str, ItemSummary] = Field(description="Catalogue data of the items shown.")


class ActiveUser(BaseModel):
    """A recently active user."""

    model_config = example({"user_id": "user-42", "last_active_ts": 1700000000412})

    user_id: str
    last_active_ts: int


class ActiveUsers(BaseModel):
    """Most recently active users first."""

    model_config = example({"users": [{"user_id": "user-42", "last_active_ts": 1700000000412}]})

    users: list[ActiveUser]


class TrendingItem(BaseModel):
    """One trending item with its catalogue data (when known)."""

    model_config = example(
        {
            "rank": 1,
            "item_id": "film-1138",
            "score": 41.2,
            "categories": ["Comedy"],
            "title": "The Long Weekend",
        }
    )

    rank: int
    item_id: str
    score: float
    categories: list[str]
    title: str | None


class Trending(BaseModel):
    """Trending items of one segment, as the workers last published them."""

    model_config = example(
        {
            "segment": "locale:en-GB",
            "items": [
                {
                    "rank": 1,
                    "item_id": "film-1138",
                    "score": 41.2,
                    "categories": ["Comedy"],
                    "title": "The Long Weekend",
                }
            ],
            "segments": ["device:tv", "global", "locale:en-GB"],
        }
    )

    segment: str
    items: list[TrendingItem]
    segments: list[str] = Field(description="Every segment with a trending list.")


class Segments(BaseModel):
    """Users per segment value, by dimension."""

    model_config = example(
        {
            "segments": {
                "lifecycle": {"active": 812, "new": 95},
                "locale": {"en-GB": 640, "de-DE": 267},
            }
        }
    )

    segments: dict[str, dict[str, int]]


class DeadLetters(BaseModel):
    """Recent dead letters, newest first."""

    model_config = example({"dead_letters": [DEAD_LETTER_EXAMPLE]})

    dead_letters: list[DeadLetter]


class ItemStats(BaseModel):
    """An item's statistics as of the newest model snapshot."""

    model_config = example(STATS)

    interactions: float
    skips: float
    watches: float
    skip_rate: float
    mean_completion: float
    popularity: float


class ItemDocument(BaseModel):
    """An item: catalogue data and statistics."""

    model_config = example(ITEM)

    item_id: str
    categories: list[str]
    title: str | None
    creator_id: str | None
    duration_seconds: float | None
    published_ts: int | None
    stats: ItemStats | dict[str, float] = Field(description="Empty until a snapshot has it.")
    trending_rank: int | None = Field(description="1-based rank in global trending, if in it.")
    available: bool = Field(True, description="Whether the item may be recommended now.")
    available_from_ts: int | None = Field(
        None, description="Not recommended before this time (epoch ms), if scheduled."
    )
    available_until_ts: int | None = Field(
        None, description="Withdrawn from this time on (epoch ms), if scheduled."
    )


class AvailabilityInput(BaseModel):
    """An item's availability (item v1.1): withdraw it, restore it, or schedule it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"available": False}, {"available_until_ts": 1700086400000}]
        },
    )

    available: StrictBool = Field(True, description="False withdraws the item from every list.")
    available_from_ts: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | None = Field(
        None, description="Not a candidate before this time, epoch ms."
    )
    available_until_ts: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | None = Field(
        None, description="Withdrawn from this time on, epoch ms."
    )


class Items(BaseModel):
    """Catalogue items, most popular first."""

    model_config = example(
        {
            "items": [ITEM],
            "categories": {"Comedy": 120, "Family": 44},
            "snapshot_version": 12,
            "stats_ts": 1700000000000,
        }
    )

    items: list[ItemDocument]
    categories: dict[str, int] = Field(description="Category -> number of items.")
    snapshot_version: int
    stats_ts: int | None


class Overview(BaseModel):
    """The newest overview point and the last minutes of them."""

    model_config = example({"latest": POINT, "history": [POINT]})

    latest: dict[str, Any] | None
    history: list[dict[str, Any]]
