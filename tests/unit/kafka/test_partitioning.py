"""Kafka's murmur2 partitioner as a pure function (``pipeline.kafka.partitioning``)."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from pipeline.kafka.partitioning import KAFKA_TEST_VECTORS, key_partitioner, murmur2, partition_for


@pytest.mark.parametrize(("data", "expected"), sorted(KAFKA_TEST_VECTORS.items()))
def test_kafka_test_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_every_tail_length_and_the_empty_key() -> None:
    # 0-3 trailing bytes take different branches; values from Kafka's Utils.murmur2
    assert murmur2(b"") == 275646681
    assert [murmur2(b"abcd"[:n]) for n in range(1, 5)] == [
        -1563381124,
        316155434,
        479470107,
        -1323649548,
    ]


def test_agrees_with_the_client_faust_produces_with() -> None:
    """Faust's producer (aiokafka) places keys with its own murmur2: the same numbers."""
    rng = random.Random(5)
    for _ in range(5_000):
        data = rng.randbytes(rng.randrange(0, 64))
        assert murmur2(data) & 0x7FFFFFFF == aiokafka_murmur2(data) & 0x7FFFFFFF


def test_partition_for_takes_str_or_bytes_and_spreads_keys() -> None:
    assert partition_for("user-42", 8) == partition_for(b"user-42", 8) == 4
    counts = [0] * 8
    for n in range(8_000):
        counts[partition_for(f"user-{n}", 8)] += 1
    assert min(counts) > 850  # ~1,000 each
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for("u", 0)


def test_text_keys_are_their_utf8_bytes() -> None:
    of = key_partitioner(8)
    for key in ("user-42", "ünïcødé", ""):
        assert of(key) == partition_for(key.encode(), 8)


def test_a_topic_has_at_least_one_partition() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for(b"k", 0)
    with pytest.raises(ValueError, match="at least one partition"):
        key_partitioner(0)
