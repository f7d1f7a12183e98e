"""Owed list refreshes: a Redis record that a user's list must still reflect an event.

An event's effects are persisted (and its offset committed) before its user's list is
refreshed; the refresh may also be coalesced for up to ``refresh_interval_ms``. A worker
killed in between (SIGKILL, OOM, power) would lose that refresh, and the next owner of the
partition never sees the event again: the list would miss the user's last event until they
act again. So the batch transaction also records the refresh as *owed* (user -> due time,
and the trigger it must carry), the owner settles it when it writes the list, and every
worker rescues refreshes overdue by ``refresh_rescue_after_seconds`` from the state in Redis.

Settling and rescuing compare the recorded trigger inside a Lua script, so neither can undo
a newer owed refresh, and a rescue never overwrites a list written after its trigger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from pipeline.lists.build import Trigger
from pipeline.stores.codec import decode_trigger, encode_trigger
from pipeline.stores.keys import RedisKeys

# KEYS: owed zset, triggers hash. ARGV: user, trigger. Forget the owed refresh if it is
# still the one this list reflects (a newer event may have recorded another meanwhile).
_SETTLE = """
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 0
"""

# KEYS: owed zset, triggers hash, recs key. ARGV: user, trigger, document, ttl seconds.
# Write the rescued list only if the refresh is still owed with the same trigger.
_RESCUE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


class OwedRefreshes:
    """The owed-refresh record of one namespace."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys
        self._settle = redis.register_script(_SETTLE)
        self._rescue = redis.register_script(_RESCUE)

    def queue_owe(self, pipe: Any, owed: Mapping[str, tuple[Trigger, int]]) -> None:
        """Record ``user -> (trigger, due ms)`` in ``pipe`` (the batch's transaction)."""
        if not owed:
            return
        pipe.zadd(self.keys.owed_refreshes, {u: due for u, (_, due) in owed.items()})
        pipe.hset(
            self.keys.owed_triggers, mapping={u: encode_trigger(t) for u, (t, _) in owed.items()}
        )

    def queue_settle(self, pipe: Any, user_id: str, trigger: Trigger) -> None:
        """In ``pipe`` (the list write): the list now reflects ``trigger``."""
        k = self.keys
        _queue_script(
            pipe,
            self._settle,
            [k.owed_refreshes, k.owed_triggers],
            [user_id, encode_trigger(trigger)],
        )

    def queue_forget(self, pipe: Any, user_id: str) -> None:
        """In ``pipe``: the user is forgotten, nothing is owed to them any more."""
        pipe.zrem(self.keys.owed_refreshes, user_id)
        pipe.hdel(self.keys.owed_triggers, user_id)

    async def overdue(self, before_ms: int, limit: int) -> list[tuple[str, Trigger]]:
        """Owed refreshes due before ``before_ms`` (oldest first, at most ``limit``)."""
        found = await self.redis.zrangebyscore(
            self.keys.owed_refreshes, "-inf", before_ms, start=0, num=limit
        )
        users = [u.decode() if isinstance(u, bytes) else str(u) for u in found]
        if not users:
            return []
        raw = await self.redis.hmget(self.keys.owed_triggers, users)
        return [(u, decode_trigger(t)) for u, t in zip(users, raw, strict=True) if t is not None]

    async def rescue(self, lists: list[tuple[str, Trigger, bytes]], ttl_seconds: int) -> list[bool]:
        """Write each ``(user, trigger, document)`` if still owed; which ones were written."""
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id, trigger, doc in lists:
                _queue_script(
                    pipe,
                    self._rescue,
                    [k.owed_refreshes, k.owed_triggers, k.recs(user_id)],
                    [user_id, encode_trigger(trigger), doc, ttl_seconds],
                )
            return [bool(r) for r in await pipe.execute()]


def _queue_script(pipe: Any, script: Any, keys: list[str], args: list[Any]) -> None:
    """EVALSHA in a pipeline that loads the script first (a restarted Redis forgot it)."""
    pipe.scripts.add(script)
    pipe.evalsha(script.sha, len(keys), *keys, *args)
