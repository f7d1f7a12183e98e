"""Kafka's default partitioner for keyed records (murmur2), as a pure function.

Kafka's Java producer, Faust/aiokafka and librdkafka's ``murmur2_random`` place a keyed record on
``toPositive(murmur2(key)) % partitions``. recloop relies on it twice: a user's events and
controls must reach the worker that owns the user, and an item's learning must reach the
worker that owns the item, so every component computes partitions with this one function.

>>> partition_for(b"user-1", 8) == partition_for(b"user-1", 8)
True
>>> murmur2(b"21")
-973932308
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: a signed 32-bit hash of ``data``."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    n4 = length // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    rest = length & 3
    tail = 4 * n4
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


def partition_for(key: bytes | str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a keyed record."""
    raw = key.encode() if isinstance(key, str) else key
    return (murmur2(raw) & 0x7FFFFFFF) % partitions
