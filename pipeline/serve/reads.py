"""Reading what the pipeline wrote: lists, trending, the user's explanation.

Nothing here ranks: a user's list is the recommendation v1 document the worker stored in
``recloop:user:{USER_ID}:recs``, byte for byte (only cut to ``n`` items when asked). A user
without a list gets the trending list the workers published for their context, as a
recommendation v1 document marked ``"personalized": false``.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from pipeline.cli.explain_cmd import explanation
from pipeline.config import Settings
from pipeline.stores.keys import RedisKeys
from schemas.validation import encode_recommendation

TRENDING_MODEL_VERSION = "trending"


def trending_segments(locale: str | None, device: str | None) -> list[tuple[str, str]]:
    """``(segment, reason)`` to try for a context, most specific first.

    >>> trending_segments("en-GB", None)
    [('locale:en-GB', 'trending in en-GB'), ('global', 'trending now')]
    """
    out = []
    if locale:
        out.append((f"locale:{locale}", f"trending in {locale}"))
    if device:
        out.append((f"device:{device}", f"trending on {device}"))
    out.append(("global", "trending now"))
    return out


async def recommendations(
    client: aioredis.Redis,
    keys: RedisKeys,
    user_id: str,
    *,
    n: int | None,
    locale: str | None,
    device: str | None,
    list_size: int,
) -> tuple[bytes, str]:
    """The user's list as JSON bytes and where it came from (``pipeline`` or ``trending``)."""
    raw: Any = await client.get(keys.recs(user_id))
    if raw is not None:
        if n is None:
            return bytes(raw), "pipeline"
        doc = orjson.loads(raw)
        if len(doc.get("items", ())) > n:
            doc["items"] = doc["items"][:n]
            return orjson.dumps(doc), "pipeline"
        return bytes(raw), "pipeline"
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
    doc_bytes = encode_recommendation(
        user_id,
        items,
        generated_ts=int(time.time() * 1000),
        trigger_event_id=None,
        trigger_ts=None,
        model_version=TRENDING_MODEL_VERSION,
        personalized=False,
    )
    return doc_bytes, "trending"


def user_document(
    client: redis.Redis, settings: Settings, user_id: str, *, history: int = 20
) -> dict[str, Any] | None:
    """``recloop explain``'s document plus the last interactions; None for an unknown user.

    Synchronous (``explanation`` is): the API calls it from a worker thread.
    """
    doc = explanation(client, settings, user_id)
    keys = RedisKeys(settings.redis_namespace)
    rows = client.lrange(keys.history(user_id), 0, history - 1)
    doc["history"] = [
        {"item_id": r[0], "ts": r[1], "type": r[2], "weight": r[3], "completion": r[4]}
        for r in (orjson.loads(raw) for raw in rows)
    ]
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


async def fingerprint(client: aioredis.Redis, keys: RedisKeys, user_id: str) -> bytes:
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
