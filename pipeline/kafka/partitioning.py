"""Which partition a key goes to: Kafka's murmur2 partitioner, as a pure function.

A user's events, controls and list must share one partition number, so that the worker owning
the user's events also gets their controls (co-partitioning) and sees their events in order.
Every producer therefore has to place keys exactly as Kafka's Java client (and Faust,
aiokafka, kafka-python, segmentio/kafka-go's ``Murmur2Balancer``, kafkajs' default
partitioner) does: ``(murmur2(key) & 0x7fffffff) % partitions``. librdkafka-based clients
(confluent-kafka, and Go/.NET/Node clients built on it) default to a *different* hash
(``consistent_random``, CRC32) and must be told ``partitioner=murmur2_random``.

This module is the reference the tests hold every producer to; recloop itself never picks
partitions by hand, the clients do.

>>> murmur2(b"21")
-973932308
>>> partition_for("user-42", 8)
4
"""

from __future__ import annotations

from collections.abc import Callable

SEED = 0x9747B28C
M = 0x5BD1E995
MASK32 = 0xFFFFFFFF

KAFKA_TEST_VECTORS: dict[bytes, int] = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
"""Inputs and results of ``Utils.murmur2`` from Kafka's own ``UtilsTest.testMurmur2``."""

LIBRDKAFKA_PARTITIONER = "murmur2_random"
"""The librdkafka ``partitioner`` setting that matches Kafka's Java client for keyed records."""


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: MurmurHash2 (seed ``0x9747b28c``) as a signed 32-bit int."""
    length = len(data)
    h = (SEED ^ length) & MASK32
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * M) & MASK32
        k ^= k >> 24
        k = (k * M) & MASK32
        h = ((h * M) & MASK32) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * M) & MASK32
    h ^= h >> 13
    h = (h * M) & MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes | str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``.

    Raises
    ------
    ValueError
        ``partitions`` is not positive.
    """
    if partitions < 1:
        msg = f"a topic has at least one partition, not {partitions}"
        raise ValueError(msg)
    raw = key.encode() if isinstance(key, str) else key
    return (murmur2(raw) & 0x7FFFFFFF) % partitions


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
