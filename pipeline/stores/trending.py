"""Published trending lists: ``recloop:trending:{segment}`` sorted sets (rank as score)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.stores.client import RedisClient
from pipeline.stores.commands import Commands, Script, send
from pipeline.stores.keys import RedisKeys

# KEYS: one trending key. ARGV: score, member, ... Replace the list in one step, so a reader
# never sees it empty (one key per call: the segments' keys live in different slots).
REPLACE_ZSET = Script.inline(
    "replace_zset",
    "redis.call('DEL', KEYS[1]) "
    "if #ARGV > 0 then redis.call('ZADD', KEYS[1], unpack(ARGV)) end return #ARGV / 2",
)


async def write_trending(
    client: RedisClient, keys: RedisKeys, segments: Mapping[str, Sequence[str]]
) -> None:
    """Replace each segment's trending list (best first), each one atomically."""
    cmds = Commands()
    for segment, items in segments.items():
        args: list[Any] = []
        for rank, item in enumerate(items):
            args += [len(items) - rank, item]
        cmds.script(REPLACE_ZSET, [keys.trending(segment)], args)
    if len(cmds):
        await send(client, cmds)
