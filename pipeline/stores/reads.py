"""Read models: what the CLI and the HTTP API read about users, lists and trending.

Nothing here ranks or learns: a user's list is the recommendation v1 document the worker
stored in ``recloop:user:{USER_ID}:recs``, byte for byte (cut to ``n`` items when asked,
without any item withdrawn since it was written: ``recloop:items:availability``); a
user without a list gets the trending list the workers published for their context, as a
recommendation v1 document marked ``"personalized": false``. Everything is async (one
client per process, ``redis.asyncio``), so the API never needs a second, blocking client.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from pipeline.config import Settings
from pipeline.features.state import Interaction
from pipeline.lists.experiments import assign, load_experiments, variant_params
from pipeline.lists.params import ListParams
from pipeline.lists.reasons import trending_segments
from pipeline.lists.withdraw import item_ids
from pipeline.model.item_features import recency_weights
from pipeline.stores.availability import unavailable
from pipeline.stores.client import RedisClient
from pipeline.stores.codec import (
    controls_from_fields,
    history_json,
    history_rows,
    score_pairs,
    segments_from_fields,
    text_fields,
)
from pipeline.stores.commands import Commands, send
from pipeline.stores.keys import Partitioning, RedisKeys
from schemas.validation import encode_recommendation

TRENDING_MODEL_VERSION = "trending"


async def recommendations(
    client: RedisClient,
    keys: RedisKeys,
    user_id: str,
    *,
    n: int | None,
    locale: str | None,
    device: str | None,
    list_size: int,
    now_ms: int,
) -> tuple[bytes, str]:
    """The user's list as JSON bytes and where it came from (``pipeline`` or ``trending``)."""
    raw: Any = await client.get(keys.recs(user_id))
    if raw is not None:
        gone = await unavailable(client, keys, item_ids(bytes(raw)), now_ms)
        if n is None and not gone:
            return bytes(raw), "pipeline"
        doc = orjson.loads(raw)
        if gone:  # withdrawn since the list was written: never served (README "Availability")
            doc["items"] = [e for e in doc["items"] if e.get("item_id") not in gone]
        if n is not None and len(doc.get("items", ())) > n:
            doc["items"] = doc["items"][:n]
            return orjson.dumps(doc), "pipeline"
        return (orjson.dumps(doc) if gone else bytes(raw)), "pipeline"
    size = n or list_size
    candidates = trending_segments(locale, device)
    async with client.pipeline(transaction=False) as pipe:
        for segment, _ in candidates:
            pipe.zrevrange(keys.trending(segment), 0, size - 1, withscores=True)
        replies = await pipe.execute()
    items: list[tuple[str, float, str]] = []
    for (_, reason), reply in zip(candidates, replies, strict=True):
        if reply:
            top = float(reply[0][1]) or 1.0
            items = [(member.decode(), float(score) / top, reason) for member, score in reply]
            break
    gone = await unavailable(client, keys, [i for i, _, _ in items], now_ms)
    items = [entry for entry in items if entry[0] not in gone]
    doc_bytes = encode_recommendation(
        user_id,
        items,
        generated_ts=now_ms,
        trigger_event_id=None,
        trigger_ts=None,
        model_version=TRENDING_MODEL_VERSION,
        personalized=False,
    )
    return doc_bytes, "trending"


async def user_record(
    client: RedisClient, keys: RedisKeys, user_id: str, *, history: int = -1
) -> dict[str, Any]:
    """Everything stored about a user, decoded: list, features, history, controls, TTLs."""
    user_keys = keys.user_keys(user_id)
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(keys.recs(user_id))
        pipe.hgetall(keys.features(user_id))
        pipe.lrange(keys.history(user_id), 0, history if history < 0 else history - 1)
        pipe.hgetall(keys.controls(user_id))
        for key in user_keys:
            pipe.ttl(key)
        replies = await pipe.execute()
    raw_recs, raw_feats, raw_history, raw_controls = replies[:4]
    return {
        "list": orjson.loads(raw_recs) if raw_recs else None,
        "features": text_fields(raw_feats),
        "history": list(reversed(history_rows(raw_history))),  # newest first
        "controls": controls_from_fields(text_fields(raw_controls)),
        "ttls": dict(zip(user_keys, replies[4:], strict=True)),
    }


async def explanation(client: RedisClient, settings: Settings, user_id: str) -> dict[str, Any]:
    """Everything ``recloop explain`` shows, as data (the HTTP API serves the same document)."""
    keys = RedisKeys(settings.redis_namespace)
    record = await user_record(client, keys, user_id)
    feats: dict[str, str] = record["features"]
    controls = record["controls"]
    history: list[Interaction] = record["history"]  # newest first
    params = ListParams.from_settings(settings)
    arm = assign(load_experiments(settings.experiments_file), user_id)
    personalized = controls.personalization
    if arm is not None:
        params, arm_personalizes = variant_params(params, arm[1])
        personalized = personalized and arm_personalizes
    positives = [h for h in reversed(history) if h.weight > 0][-params.context_size :]
    recency = recency_weights(len(positives), params.recency_decay)
    n_events = int(feats.get("n_events", 0))
    return {
        "user_id": user_id,
        "list": record["list"],
        "personalized": personalized,
        "experiment": {"name": arm[0].name, "variant": arm[1].name} if arm else None,
        "signals": {
            "recent_positives": [
                {
                    "item_id": h.item_id,
                    "type": h.kind,
                    "signal": h.weight,
                    "weight": round(h.weight * r, 4),
                }
                for h, r in zip(reversed(positives), reversed(recency), strict=True)
            ],  # fmt: skip
            "recent_negatives": [
                {"item_id": h.item_id, "type": h.kind, "signal": h.weight}
                for h in history
                if h.weight < 0
            ][:10],
            "category_affinity": orjson.loads(feats.get("affinity", "{}")),
            "declared_interests": list(controls.declared),
            "declared_prior_weight": round(
                controls.prior(
                    n_events, weight=params.declared_weight, halfway=params.declared_halfway
                ),
                4,
            ),
            "score_weights": {
                "co_occurrence": 1.0,
                "category": params.category_weight,
                "popularity": params.popularity_weight,
                "trend": params.trend_weight,
                "ranker_power": params.ranker_power,
                "exploration_share": params.exploration_share,
                "category_cap": params.category_cap,
            },
        },
        "segments": segments_from_fields(feats),
        "controls": {
            "muted_categories": sorted(controls.muted_categories),
            "muted_creators": sorted(controls.muted_creators),
            "muted_items": sorted(controls.muted_items),
            "not_interested": controls.not_interested,
            "personalization": "on" if controls.personalization else "off",
        },
        "features": feats,
        "history": [history_json(h) for h in history],
        "stored_keys": {key: ttl for key, ttl in record["ttls"].items() if ttl != -2},
    }


async def user_document(
    client: RedisClient, settings: Settings, user_id: str, *, history: int = 20
) -> dict[str, Any] | None:
    """``explanation`` with the last ``history`` interactions; None for an unknown user."""
    doc = await explanation(client, settings, user_id)
    doc["history"] = doc["history"][:history]
    if doc["list"] is None and not doc["features"] and not doc["stored_keys"]:
        return None
    return doc


def shown_items(doc: dict[str, Any]) -> list[str]:
    """Item ids a user view mentions (list, history, signals), for catalogue lookup."""
    ids: list[str] = []
    if doc.get("list"):
        ids.extend(entry["item_id"] for entry in doc["list"]["items"])
    ids.extend(h["item_id"] for h in doc.get("history", ()))
    return list(dict.fromkeys(ids))


async def fingerprint(client: RedisClient, keys: RedisKeys, user_id: str) -> bytes:
    """Changes whenever the user's list, features or controls change (for live streams)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(keys.recs(user_id))
        pipe.hget(keys.features(user_id), "updated_ts")
        pipe.hgetall(keys.controls(user_id))
        recs, updated, controls = await pipe.execute()
    digest = hashlib.blake2b(recs or b"", digest_size=16)
    digest.update(updated or b"")
    for name, value in sorted(controls.items()):
        digest.update(b"\x00" + name + b"=" + value)
    return digest.digest()


async def recent_users(
    client: RedisClient, keys: RedisKeys, partitions: Partitioning, limit: int
) -> list[tuple[str, int]]:
    """The ``limit`` most recently active users ``(user_id, last active ms)``, newest first."""
    cmds = Commands()
    for p in partitions.all():
        cmds.command("ZREVRANGE", keys.active(p), 0, limit - 1, "WITHSCORES")
    found: list[tuple[str, int]] = []
    for reply in await send(client, cmds):
        found += [(member.decode(), int(score)) for member, score in score_pairs(reply)]
    found.sort(key=lambda f: (-f[1], f[0]))
    return found[:limit]


async def active_count(
    client: RedisClient, keys: RedisKeys, partitions: Partitioning, since_ms: int
) -> int:
    """Users with an event processed since ``since_ms``, over all partitions."""
    cmds = Commands()
    for p in partitions.all():
        cmds.command("ZCOUNT", keys.active(p), since_ms, "+inf")
    return sum(int(n) for n in await send(client, cmds))
