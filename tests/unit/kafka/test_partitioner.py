"""Kafka's murmur2 partitioner, checked against the reference vectors of Kafka's UtilsTest."""

from __future__ import annotations

import pytest

from pipeline.kafka.partitioner import murmur2, partition_for

# org.apache.kafka.common.utils.UtilsTest#testMurmur2
VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), VECTORS.items())
def test_murmur2_matches_kafka(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_partition_is_positive_modulo_and_accepts_text() -> None:
    for key in VECTORS:
        p = partition_for(key, 8)
        assert 0 <= p < 8
        assert p == (murmur2(key) & 0x7FFFFFFF) % 8
    assert partition_for("foobar", 8) == partition_for(b"foobar", 8)


def test_keys_spread_over_partitions() -> None:
    counts = [0] * 8
    for n in range(8_000):
        counts[partition_for(f"user-{n}", 8)] += 1
    assert min(counts) > 800
