"""The worker's Redis connection (``pipeline.stores.connection``) against a real Redis.

Buffered replies are taken without a read timeout; these tests pin what must not change:
the replies, the errors, the timeout of a read that waits, on a single Redis and a cluster.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.exceptions import ResponseError, TimeoutError

from pipeline.stores.client import client_for
from pipeline.stores.commands import Commands, Script, send
from tests.conftest import REDIS_KINDS, redis_url_of

ECHO = Script.inline("echo", "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")
FAIL = Script.inline("fail", "return redis.error_reply('ERR no such thing')")


@pytest.mark.parametrize("kind", REDIS_KINDS)
def test_pipelined_replies_as_redis_py(request: pytest.FixtureRequest, kind: str) -> None:
    url = redis_url_of(request, kind)

    async def run() -> None:
        client = client_for(url, cluster=kind == "redis-cluster", socket_timeout=5)
        try:
            tag = uuid.uuid4().hex
            cmds = Commands()
            for n in range(500):
                key = f"t:{{{tag}-{n}}}"
                cmds.script(ECHO, [key], ["é" * (n % 7), n])
                cmds.command("SET", key, b"\x00" * n)
                cmds.command("GET", key)
            replies = await send(client, cmds)
            for n in range(500):
                key = f"t:{{{tag}-{n}}}"
                echoed, ok, value = replies[3 * n : 3 * n + 3]
                assert echoed == [key.encode(), ("é" * (n % 7)).encode(), n + 1]
                assert ok is True
                assert value == b"\x00" * n
            failing = Commands()
            failing.command("SET", f"t:{{{tag}}}", 1)
            failing.script(FAIL, [f"t:{{{tag}}}"], [])
            with pytest.raises(ResponseError, match="no such thing"):
                await send(client, failing)
            assert await client.get(f"t:{{{tag}}}") == b"1"  # the connection still works
            async with client.pipeline(transaction=False) as pipe:
                pipe.incr(f"t:{{{tag}}}")
                pipe.hget(f"t:{{{tag}}}", "f")  # WRONGTYPE, returned in place
                pipe.incr(f"t:{{{tag}}}")
                got = await pipe.execute(raise_on_error=False)
            assert got[0] == 2 and isinstance(got[1], ResponseError) and got[2] == 3
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_read_that_waits_still_times_out(redis_url: str) -> None:
    async def run() -> None:
        client = client_for(redis_url, cluster=False, socket_timeout=0.3)
        pauser = client_for(redis_url, cluster=False)
        try:
            await client.ping()
            await pauser.execute_command("CLIENT", "PAUSE", 1500, "ALL")
            started = asyncio.get_running_loop().time()
            with pytest.raises(TimeoutError):
                await client.get("t:paused")
            assert asyncio.get_running_loop().time() - started < 1.2
        finally:
            await pauser.execute_command("CLIENT", "UNPAUSE")
            await client.aclose()
            await pauser.aclose()

    asyncio.run(run())
