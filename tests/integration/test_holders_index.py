"""``queue_holders``: one ``index_holders.lua`` call per partition, on Redis and a cluster."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pipeline.stores.availability import queue_holders
from pipeline.stores.client import client_for
from pipeline.stores.commands import Commands, load_scripts, send
from pipeline.stores.keys import Partitioning, RedisKeys
from pipeline.worker.runtime import SCRIPTS
from tests.conftest import REDIS_KINDS, redis_url_of


@pytest.mark.parametrize("kind", REDIS_KINDS)
def test_joins_leaves_and_expiry(request: pytest.FixtureRequest, kind: str) -> None:
    url = redis_url_of(request, kind)
    keys = RedisKeys(f"h{uuid.uuid4().hex[:8]}")
    parts = Partitioning(4, lambda user: int(user[1:]) % 4)
    users = [f"u{n}" for n in range(40)]

    async def run() -> None:
        client = client_for(url, cluster=kind == "redis-cluster")
        try:
            await load_scripts(client, SCRIPTS)
            first = Commands()
            lists = [(u, ["a", "b"], ["a", "b"], []) for u in users]
            queue_holders(first, keys, parts, lists, now_ms=1_000, ttl_seconds=50)
            assert len(first) == 4  # one call per partition, not one per set and EXPIRE
            await send(client, first)
            second = Commands()
            changed = [(u, ["a", "c"], ["c"], ["b"]) for u in users[:10]]
            queue_holders(second, keys, parts, changed, now_ms=2_000, ttl_seconds=50)
            unchanged = [(u, ["a", "b"], [], []) for u in users[10:]]
            queue_holders(second, keys, parts, unchanged, now_ms=2_000, ttl_seconds=50)
            await send(client, second)
            await send(client, second)  # sent again (a retry): changes nothing
            for u in users:
                p = parts.of(u)
                assert await client.zscore(keys.holders(p, "a"), u) == 1_000
                moved = u in users[:10]
                assert (await client.zscore(keys.holders(p, "b"), u)) == (None if moved else 1_000)
                assert (await client.zscore(keys.holders(p, "c"), u)) == (2_000 if moved else None)
            for p in range(4):
                for item in "abc":
                    assert 0 < await client.ttl(keys.holders(p, item)) <= 100
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_set_with_thousands_of_members_in_one_batch(redis_url: str) -> None:
    keys = RedisKeys(f"h{uuid.uuid4().hex[:8]}")
    parts = Partitioning(1, lambda _: 0)
    users = [f"u{n}" for n in range(6_000)]  # more values than Lua's unpack takes at once

    async def run() -> None:
        client = client_for(redis_url, cluster=False)
        try:
            await load_scripts(client, SCRIPTS)
            joined = Commands()
            lists = [(u, ["a"], ["a"], []) for u in users]
            queue_holders(joined, keys, parts, lists, now_ms=1_000, ttl_seconds=50)
            await send(client, joined)
            assert await client.zcard(keys.holders(0, "a")) == 6_000
            left = Commands()
            lists = [(u, ["b"], ["b"], ["a"]) for u in users[:5_000]]
            queue_holders(left, keys, parts, lists, now_ms=2_000, ttl_seconds=50)
            await send(client, left)
            assert await client.zcard(keys.holders(0, "a")) == 1_000
            assert await client.zcard(keys.holders(0, "b")) == 5_000
        finally:
            await client.aclose()

    asyncio.run(run())
