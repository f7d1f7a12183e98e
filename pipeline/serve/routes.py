"""API v1 endpoints: thin handlers over :mod:`pipeline.serve.reads`, ``ingest`` and views.

Handlers encode their own JSON with orjson and return it as a ``Response``; the
``response_model`` of each route documents the body in ``/openapi.json`` (the fuzz test
checks the two agree).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from pipeline.clock import wall_ms
from pipeline.errors import InvalidEventError
from pipeline.events.build import build_item
from pipeline.lists.experiments import load_experiments
from pipeline.model.availability import ALWAYS, NEVER, Availability
from pipeline.serve import models
from pipeline.serve.auth import require_admin, require_read
from pipeline.serve.experiment_models import Experiments
from pipeline.serve.guard import require_json
from pipeline.serve.ingest import (
    Kind,
    TooLargeError,
    elements_of,
    validate_batch,
)
from pipeline.serve.services import ApiError, Services, invalid_response
from pipeline.stores.availability import unavailable
from pipeline.stores.experiments import read_report
from pipeline.stores.forget import forget_applied
from pipeline.stores.reads import recent_users, recommendations
from pipeline.stores.segments import segment_sizes
from schemas.limits import MAX_CATEGORY_LENGTH, MAX_CONTEXT_LENGTH, MAX_ID_LENGTH
from schemas.recommendation import Recommendation

FORGET_WAIT_SECONDS = 10.0
"""How long ``DELETE /v1/users/{user_id}`` waits for the worker by default."""

JSON = "application/json"
MAX_N = 200

UserId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="Pseudonymous user id.")
]
ItemId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="Item id.")]

ERRORS_READ: dict[int | str, dict[str, Any]] = {
    400: {
        "model": models.ErrorBody,
        "description": "`Host` not in RECLOOP_API_ALLOWED_HOSTS (`host_not_allowed`).",
    },
    401: {"model": models.ErrorBody, "description": "Missing or unknown API key."},
    403: {"model": models.ErrorBody, "description": "The key does not allow this."},
    422: {"model": models.InvalidBody, "description": "Invalid query or path parameter."},
    503: {"model": models.ErrorBody, "description": "Redis or Kafka did not answer."},
}
ERRORS_WRITE: dict[int | str, dict[str, Any]] = {
    **ERRORS_READ,
    403: {
        "model": models.ErrorBody,
        "description": "The key does not allow this (`forbidden`), or a browser `Origin` "
        "other than the server's own or RECLOOP_API_CORS_ORIGINS (`origin_not_allowed`).",
    },
    413: {"model": models.ErrorBody, "description": "Body or array over the documented limit."},
    415: {
        "model": models.ErrorBody,
        "description": "Not `Content-Type: application/json` (`unsupported_media_type`); "
        "a DELETE may send none.",
    },
    422: {
        "model": models.InvalidBody,
        "description": "Invalid elements, each listed with its array index; nothing produced.",
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "model": models.ErrorBody,
        "description": "Nothing is known about it (or the id holds a '/', which no route takes).",
    }
}

read = APIRouter(prefix="/v1", dependencies=[Depends(require_read)], responses=ERRORS_READ)
write = APIRouter(
    prefix="/v1",
    dependencies=[Depends(require_admin), Depends(require_json)],
    responses=ERRORS_WRITE,
)
admin_read = APIRouter(prefix="/v1", dependencies=[Depends(require_admin)], responses=ERRORS_READ)


async def services(request: Request) -> Services:
    """The process's clients and views (built by ``create_api``)."""
    svc: Services = request.app.state.services
    return svc


Svc = Annotated[Services, Depends(services)]


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Encode with orjson (dict keys kept in insertion order)."""
    return Response(orjson.dumps(doc), status_code=status, media_type=JSON, headers=headers)


# --------------------------------------------------------------------------- reads
@read.get(
    "/users/{user_id}/recommendations",
    operation_id="getRecommendations",
    response_model=Recommendation,
    responses=NOT_FOUND,
    summary="A user's current list",
    description="The recommendation v1 document the pipeline last wrote for the user. A user "
    "without a list gets the trending list of the context given (locale, then device, then "
    "global), with `personalized: false` and `model_version: trending` (so does a forgotten "
    "user); an opted-out user's stored list is non-personalised already. Header "
    "`X-Recloop-Source` "
    "says which (`pipeline` or `trending`).",
)
async def get_recommendations(
    svc: Svc,
    user_id: UserId,
    n: Annotated[int | None, Query(ge=1, le=MAX_N, description="At most n items.")] = None,
    locale: Annotated[
        str | None, Query(max_length=MAX_CONTEXT_LENGTH, description="Context for a cold start.")
    ] = None,
    device: Annotated[
        str | None, Query(max_length=MAX_CONTEXT_LENGTH, description="Context for a cold start.")
    ] = None,
) -> Response:
    """A user's current list."""
    body, source = await recommendations(
        svc.redis,
        svc.keys_layout,
        user_id,
        n=n,
        locale=locale,
        device=device,
        list_size=svc.settings.list_size,
        now_ms=wall_ms(),
    )
    return Response(body, media_type=JSON, headers={"X-Recloop-Source": source})


@read.get(
    "/users/{user_id}",
    operation_id="getUser",
    response_model=models.UserView,
    responses=NOT_FOUND,
    summary="What recloop keeps about a user and why their list looks as it does",
    description="Features, segments, controls, experiment arm, signals behind the list and "
    "the last interactions (what `recloop explain` shows).",
)
async def get_user(svc: Svc, user_id: UserId) -> Response:
    """What recloop keeps about a user."""
    doc = await svc.user_view(user_id)
    if doc is None:
        raise ApiError(404, "not_found", "recloop keeps nothing about this user")
    return json_response(doc)


@read.get(
    "/users",
    operation_id="listUsers",
    response_model=models.ActiveUsers,
    summary="Recently active users",
)
async def get_users(svc: Svc, limit: Annotated[int, Query(ge=1, le=500)] = 20) -> Response:
    """Users with the most recent activity first."""
    found = await recent_users(svc.redis, svc.keys_layout, svc.partitions, limit)
    users = [{"user_id": u, "last_active_ts": ts} for u, ts in found]
    return json_response({"users": users})


@read.get(
    "/trending",
    operation_id="getTrending",
    response_model=models.Trending,
    summary="Trending items of a segment",
)
async def get_trending(
    svc: Svc,
    segment: Annotated[
        str, Query(min_length=1, max_length=128, description="global, locale:en-GB, device:tv")
    ] = "global",
    n: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Trending items of a segment with their catalogue data."""
    await svc.catalogue.refresh()
    keys = svc.keys_layout
    found: Any = await svc.redis.zrevrange(keys.trending(segment), 0, n - 1, withscores=True)
    prefix = keys.trending("")
    names: list[str] = []
    async for key in svc.redis.scan_iter(match=keys.trending("*"), count=500):
        names.append(key.decode()[len(prefix) :])
    # filtered at read time like every list served: the worker rewrites trending on a timer
    gone = await unavailable(svc.redis, keys, [m.decode() for m, _ in found], wall_ms())
    items: list[dict[str, Any]] = []
    for member, score in found:
        item_id = member.decode()
        if item_id in gone:
            continue
        entry = svc.catalogue.get(item_id)
        items.append(
            {
                "rank": len(items) + 1,
                "item_id": item_id,
                "score": float(score),
                "categories": entry.categories if entry else [],
                "title": entry.title if entry else None,
            }
        )
    return json_response({"segment": segment, "items": items, "segments": sorted(names)})


@read.get(
    "/segments",
    operation_id="getSegments",
    response_model=models.Segments,
    summary="Users per segment",
)
async def get_segments(svc: Svc) -> Response:
    """Users per segment value, by dimension."""
    sizes = await segment_sizes(svc.redis, svc.keys_layout, svc.partitions)
    return json_response({"segments": sizes})


@read.get(
    "/experiments",
    operation_id="getExperiments",
    response_model=Experiments,
    summary="Experiment report",
    description="Per experiment: users per arm and the sample-ratio-mismatch check; per "
    "variant and metric (click-through, completion, skip rate, events per user, return "
    "rates), the value and, against control, the difference and the lift with user-level "
    "95 % confidence intervals (delta method) and a p-value (`recloop experiments report`).",
)
async def get_experiments(svc: Svc) -> Response:
    """The experiment report."""
    experiments = load_experiments(svc.settings.experiments_file)
    rows = await read_report(
        svc.redis,
        svc.keys_layout,
        svc.partitions,
        experiments,
        windows=svc.settings.return_windows,
        now_ms=wall_ms(),
    )
    return json_response({"experiments": rows})


@read.get(
    "/items",
    operation_id="listItems",
    response_model=models.Items,
    summary="Catalogue items, most popular first",
)
async def get_items(
    svc: Svc,
    category: Annotated[str | None, Query(min_length=1, max_length=MAX_CATEGORY_LENGTH)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """Catalogue items (of a category), most popular first."""
    await svc.catalogue.refresh()
    cat = svc.catalogue
    entries = cat.list(category, limit)
    windows = await _availability(svc, [e.item_id for e in entries])
    return json_response(
        {
            "items": [
                {**e.document(), "trending_rank": None, **windows[e.item_id]} for e in entries
            ],
            "categories": cat.categories(),
            "snapshot_version": cat.snapshot_version,
            "stats_ts": cat.stats_ts,
        }
    )


@read.get(
    "/items/{item_id}",
    operation_id="getItem",
    response_model=models.ItemDocument,
    responses=NOT_FOUND,
    summary="An item's catalogue data and statistics",
)
async def get_item(svc: Svc, item_id: ItemId) -> Response:
    """An item's catalogue data and statistics."""
    await svc.catalogue.refresh()
    entry = svc.catalogue.get(item_id)
    if entry is None:
        raise ApiError(404, "not_found", "no worker has seen this item")
    rank: Any = await svc.redis.zrevrank(svc.keys_layout.trending("global"), item_id)
    window = (await _availability(svc, [item_id]))[item_id]
    rank = None if rank is None else rank + 1
    return json_response({**entry.document(), "trending_rank": rank, **window})


async def _availability(svc: Services, item_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per item: ``available`` now and its window (``recloop:items:availability``)."""
    raw: Any = (
        await svc.redis.hmget(svc.keys_layout.item_availability, item_ids) if item_ids else []
    )
    now = wall_ms()
    out = {}
    for item_id, value in zip(item_ids, raw, strict=True):
        window = ALWAYS if value is None else Availability.decode(value.decode())
        out[item_id] = {
            "available": window.at(now),
            "available_from_ts": window.from_ms if 0 < window.from_ms < NEVER else None,
            "available_until_ts": window.until_ms if window.until_ms < NEVER else None,
        }
    return out


@read.get(
    "/overview",
    operation_id="getOverview",
    response_model=models.Overview,
    summary="Live pipeline overview",
)
async def get_overview(svc: Svc) -> Response:
    """The newest overview point and the last minutes of them."""
    sampler = svc.overview
    if sampler.latest() is None:
        await sampler.sample()
    return json_response({"latest": sampler.latest(), "history": list(sampler.points)})


# --------------------------------------------------------------------------- writes
async def _produce(request: Request, svc: Services, kind: Kind) -> Response:
    settings = svc.settings
    limit = settings.api_max_batch * settings.max_event_bytes + 65_536
    body = await read_body(request, limit)
    try:
        elements, _ = elements_of(body, settings)
    except TooLargeError as exc:
        raise ApiError(413, "too_large", str(exc)) from exc
    except InvalidEventError as exc:
        return invalid_response(
            "the body is not a JSON object or array", [(None, exc.reason.value, exc.detail)]
        )
    if not elements:
        return invalid_response("the array is empty", [(None, "invalid_value", "send 1 or more")])
    batch = validate_batch(elements, kind, settings, now_ms=wall_ms())
    if batch.errors:
        return invalid_response(
            f"{len(batch.errors)} of {len(elements)} element(s) invalid; nothing was produced",
            [(e.index, e.reason, e.detail) for e in batch.errors],
        )
    topic = settings.topic_events if kind == "events" else settings.topic_controls
    await svc.sender.send(topic, batch.records)
    return json_response({"accepted": len(batch.ids), "ids": batch.ids}, status=202)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"body of {declared} bytes; at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_BODY_DOC = (
    "One object or an array of at most `RECLOOP_API_MAX_BATCH` (500) of them, validated "
    "by the workers' own code. `202` only after the broker acknowledged every record; an "
    "invalid element makes the whole request `422` (each error with its array index) and "
    "nothing of it is produced. A body over the limit is `413`. Send your own ids to make "
    "a retried request harmless (duplicates are ignored by id)."
)


def _one_or_many(schema: str) -> dict[str, Any]:
    """OpenAPI request body: one ``schema`` object or a non-empty array of them."""
    ref = {"$ref": f"#/components/schemas/{schema}"}
    array = {"type": "array", "items": ref, "minItems": 1, "maxItems": 500}
    return {
        "requestBody": {"required": True, "content": {JSON: {"schema": {"oneOf": [ref, array]}}}}
    }


@write.post(
    "/events",
    operation_id="sendEvents",
    status_code=202,
    response_model=models.Accepted,
    summary="Send events (event v1)",
    description=_BODY_DOC + " `event_id` and `ts` are filled in when absent.",
    openapi_extra=_one_or_many("EventInput"),
)
async def post_events(request: Request, svc: Svc) -> Response:
    """Send events."""
    return await _produce(request, svc, "events")


@write.post(
    "/controls",
    operation_id="sendControls",
    status_code=202,
    response_model=models.Accepted,
    summary="Send user controls (control v1: mute, not_interested, ...)",
    description=_BODY_DOC + " `control_id` and `ts` are filled in when absent.",
    openapi_extra=_one_or_many("ControlInput"),
)
async def post_controls(request: Request, svc: Svc) -> Response:
    """Send controls."""
    return await _produce(request, svc, "controls")


@write.put(
    "/items/{item_id}/availability",
    operation_id="setItemAvailability",
    status_code=202,
    response_model=models.Accepted,
    responses=NOT_FOUND,
    summary="Withdraw, restore or schedule an item (item v1.1 availability)",
    description="Sends the item's catalogue record again (as the workers know it) with the "
    "given availability on the items topic: `available: false` withdraws it from every list "
    "within seconds, `true` makes it a candidate again, `available_from_ts` / "
    "`available_until_ts` schedule it. `202` once the broker acknowledged the record; `404` "
    "when no worker has seen the item. `ids` holds the item id.",
)
async def put_item_availability(
    svc: Svc, item_id: ItemId, body: models.AvailabilityInput
) -> Response:
    """Withdraw, restore or schedule an item."""
    await svc.catalogue.refresh()
    entry = svc.catalogue.get(item_id)
    if entry is None:
        raise ApiError(404, "not_found", "no worker has seen this item")
    doc = {k: v for k, v in entry.document().items() if k != "stats" and v is not None}
    doc.update(body.model_dump(exclude_none=True))
    try:
        _, raw = build_item(doc, svc.settings)
    except InvalidEventError as exc:
        return invalid_response("invalid availability", [(None, exc.reason.value, exc.detail)])
    await svc.sender.send(svc.settings.topic_items, [(item_id.encode(), raw)])
    return json_response({"accepted": 1, "ids": [item_id]}, status=202)


@write.delete(
    "/users/{user_id}",
    operation_id="forgetUser",
    status_code=200,
    response_model=models.ForgetRequested,
    responses={
        **NOT_FOUND,
        202: {"model": models.ForgetRequested, "description": "Sent, not confirmed in time."},
    },
    summary="Forget a user",
    description="Sends a control v1 `forget` on the controls topic, as `recloop forget` "
    "does; the worker owning the user deletes every per-user key and index entry, drops "
    "the user's events sent before the forget that arrive later, and writes a tombstone "
    "for the user on the recommendations topic. Like `recloop forget`, waits (up to "
    "`wait` seconds) until the worker applied it: `200` with `applied: true` when nothing "
    "of the user is left in Redis, `202` with `applied: false` when the broker acknowledged "
    "the request but the worker did not confirm it in time (the forget still happens).",
)
async def delete_user(
    svc: Svc,
    user_id: UserId,
    wait: Annotated[
        float, Query(ge=0, le=60, description="Seconds to wait for the worker (0: do not wait).")
    ] = FORGET_WAIT_SECONDS,
) -> Response:
    """Forget a user."""
    sent_after = wall_ms() - 1  # the control's ts is at or after this
    batch = validate_batch([{"type": "forget", "user_id": user_id}], "controls",
                           svc.settings, now_ms=sent_after + 1)  # fmt: skip
    if batch.errors:
        e = batch.errors[0]
        return invalid_response("invalid user id", [(None, e.reason, e.detail)])
    await svc.sender.send(svc.settings.topic_controls, batch.records)
    applied = await _forget_confirmed(svc, user_id, sent_after, wait)
    body = {"accepted": 1, "ids": batch.ids, "applied": applied}
    return json_response(body, status=200 if applied else 202)


async def _forget_confirmed(svc: Services, user_id: str, since_ms: int, wait: float) -> bool:
    """Poll for the worker's forget marker (and no key left) until ``wait`` runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while wait > 0:
        if await forget_applied(svc.redis, svc.keys_layout, svc.partitions, user_id, since_ms):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
    return False


@admin_read.get(
    "/dead-letters",
    operation_id="listDeadLetters",
    response_model=models.DeadLetters,
    summary="Recent dead letters with their reasons (admin: they hold raw payloads)",
)
async def get_dead_letters(svc: Svc, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    """Recent dead letters, newest first."""
    try:
        docs = await asyncio.to_thread(svc.kafka.recent_dead_letters, limit)
    except Exception as exc:
        raise ApiError(503, "unavailable", f"Kafka did not answer: {type(exc).__name__}") from exc
    return json_response({"dead_letters": docs})
