"""Response bodies of API v1 as pydantic models: they document ``/openapi.json``.

Handlers build plain dicts and encode them with orjson (faster than validating a model per
request); the schemathesis test checks that what they send matches these models.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from schemas.dead_letter import DeadLetter
from schemas.recommendation import Recommendation


class ErrorBody(BaseModel):
    """Any refused request (400, 401, 403, 404, 413, 415, 503)."""

    error: str = Field(
        description="Stable code: host_not_allowed, unauthorized, forbidden, "
        "origin_not_allowed, not_found, too_large, unsupported_media_type, unavailable, ..."
    )
    detail: str = Field(description="What was wrong and what to do.")


class ElementError(BaseModel):
    """Why one element of a request was refused."""

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

    error: str = Field(description="Always 'invalid'.")
    detail: str
    errors: list[ElementError]


class Accepted(BaseModel):
    """202: every record was acknowledged by the broker."""

    accepted: int = Field(description="Number of records produced.")
    ids: list[str] = Field(description="event_id / control_id of each, in request order.")


class Health(BaseModel):
    """The process is up."""

    status: str


class Ready(BaseModel):
    """Whether Redis and the broker answer."""

    ready: bool
    redis: bool
    kafka: bool


class HistoryEntry(BaseModel):
    """One of the user's last interactions (newest first)."""

    item_id: str
    ts: int
    type: str
    weight: float
    completion: float | None


class ItemSummary(BaseModel):
    """What the catalogue says about an item."""

    item_id: str
    categories: list[str]
    title: str | None


class UserView(BaseModel):
    """What ``recloop explain`` shows: list, signals, segments, controls, experiment arm."""

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

    user_id: str
    last_active_ts: int


class ActiveUsers(BaseModel):
    """Most recently active users first."""

    users: list[ActiveUser]


class TrendingItem(BaseModel):
    """One trending item with its catalogue data (when known)."""

    rank: int
    item_id: str
    score: float
    categories: list[str]
    title: str | None


class Trending(BaseModel):
    """Trending items of one segment, as the workers last published them."""

    segment: str
    items: list[TrendingItem]
    segments: list[str] = Field(description="Every segment with a trending list.")


class Segments(BaseModel):
    """Users per segment value, by dimension."""

    segments: dict[str, dict[str, int]]


class Experiments(BaseModel):
    """The experiment report (``recloop experiments``)."""

    experiments: list[dict[str, Any]]


class DeadLetters(BaseModel):
    """Recent dead letters, newest first."""

    dead_letters: list[DeadLetter]


class ItemStats(BaseModel):
    """An item's statistics as of the newest model snapshot."""

    interactions: float
    skips: float
    watches: float
    skip_rate: float
    mean_completion: float
    popularity: float


class ItemDocument(BaseModel):
    """An item: catalogue data and statistics."""

    item_id: str
    categories: list[str]
    title: str | None
    creator_id: str | None
    duration_seconds: float | None
    published_ts: int | None
    stats: ItemStats | dict[str, float] = Field(description="Empty until a snapshot has it.")
    trending_rank: int | None = Field(description="1-based rank in global trending, if in it.")


class Items(BaseModel):
    """Catalogue items, most popular first."""

    items: list[ItemDocument]
    categories: dict[str, int] = Field(description="Category -> number of items.")
    snapshot_version: int
    stats_ts: int | None


class Overview(BaseModel):
    """The newest overview point and the last minutes of them."""

    latest: dict[str, Any] | None
    history: list[dict[str, Any]]
