"""Commands packed by hiredis are byte for byte what redis-py would have sent."""

from __future__ import annotations

import random

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from pipeline.stores.client import client_for
from pipeline.stores.connection import fast_connection as packing

VALUES: list[object] = [
    "EVALSHA", "abc", "", "é ü", b"\x00\xff", 0, -5, 2**62, 1_764_360_000_000,
    1.5, 0.1, -0.0, 1e20, 1e-7, 3.141592653589793, 123456789.123456789,
]  # fmt: skip


def _both(*args: object) -> tuple[bytes, bytes]:
    fast, plain = packing(Connection)(), Connection()
    return b"".join(fast.pack_command(*args)), b"".join(plain.pack_command(*args))


def test_same_bytes_as_redis_py() -> None:
    rng = random.Random(7)
    floats = [rng.uniform(-1e6, 1e6) * rng.choice([1, 1e-9, 1e9]) for _ in range(2_000)]
    for value in [*VALUES, *floats]:
        fast, plain = _both("ZADD", "k", value, "m")
        assert fast == plain, value


def test_whole_command_at_once() -> None:
    fast, plain = _both("EVALSHA", "a" * 40, 2, "k1", "k2", *VALUES)
    assert fast == plain
    assert len(packing(Connection)().pack_command("EVALSHA", "x", 0)) == 1


def test_what_hiredis_does_not_pack_goes_through_redis_py() -> None:
    fast, plain = _both("CONFIG GET", "maxmemory")  # a multi-word command name
    assert fast == plain
    assert _both("SET", "k", memoryview(b"ab"))[0] == _both("SET", "k", b"ab")[1]
    with pytest.raises(DataError):  # redis-py's own error, not hiredis's TypeError
        packing(Connection)().pack_command("SET", "k", True)


def test_every_connection_kind_keeps_its_class() -> None:
    for base in (Connection, SSLConnection, UnixDomainSocketConnection):
        packed = packing(base)
        assert issubclass(packed, base)
        assert packing(packed) is packed
        assert packing(base) is packed  # one class per base, not one per client


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0"])
def test_clients_use_it(url: str) -> None:
    single = client_for(url, cluster=False)
    assert single.connection_pool.connection_class is packing(
        SSLConnection if url.startswith("rediss") else Connection
    )
    cluster = client_for(url, cluster=True)
    wanted = packing(SSLConnection if url.startswith("rediss") else Connection)
    assert cluster.nodes_manager.connection_kwargs["connection_class"] is wanted
    assert all(n.connection_class is wanted for n in cluster.startup_nodes)
