"""Kafka's default partitioner for keyed records, as one pure function: ``partition_for``.

A user's events, controls and Redis partition keys must agree on one partition number, the
one Kafka's Java client (and aiokafka, kafka-python, Faust) gives the key:
``(murmur2(key) & 0x7fffffff) % partitions``. Workers use it to find records that another
client (librdkafka's CRC32 default, kcat, an explicit partition) put elsewhere: those are
re-produced, keyed correctly, to the right partition (README "Topics"), and it names the
per-partition Redis keys (``recloop:p:{P}:...``) a user's indexes live in.

>>> partition_for(b"21", 8)
4
>>> murmur2(b"21")
-973932308
"""

from __future__ import annotations

from collections.abc import Callable

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF

KAFKA_TEST_VECTORS: dict[bytes, int] = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
"""Inputs and results of ``Utils.murmur2`` in Kafka's own ``UtilsTest.testMurmur2``."""


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` (MurmurHash2, seed ``0x9747b28c``) as a signed 32-bit int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    tail = length & ~3
    for i in range(0, tail, 4):
        k = (int.from_bytes(data[i : i + 4], "little") * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record keyed ``key``.

    Raises
    ------
    ValueError
        ``partitions`` is not positive.
    """
    if partitions < 1:
        msg = f"a topic has at least one partition, not {partitions}"
        raise ValueError(msg)
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def key_partitioner(partitions: int) -> Callable[[str], int]:
    """``partition_for`` of a text key (a user or item id) among ``partitions``.

    >>> key_partitioner(8)("21")
    4
    """
    if partitions < 1:
        msg = f"a topic has at least one partition, not {partitions}"
        raise ValueError(msg)

    def partition_of(key: str) -> int:
        return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions

    return partition_of
