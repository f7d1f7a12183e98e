"""Kafka's default partitioner, reproduced: reference vectors and the clients' own."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner as AiokafkaPartitioner

from pipeline.kafka.partitioner import KAFKA_TEST_VECTORS, key_partitioner, murmur2, partition_for


@pytest.mark.parametrize(("key", "expected"), sorted(KAFKA_TEST_VECTORS.items()))
def test_murmur2_matches_kafkas_own_test_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_partition_matches_the_partitioner_faust_and_aiokafka_use() -> None:
    rng = random.Random(7)
    partitioner = AiokafkaPartitioner()
    for _ in range(2_000):
        key = rng.randbytes(rng.randint(0, 40))
        for count in (1, 6, 8, 31):
            partitions = list(range(count))
            assert partition_for(key, count) == partitioner(key, partitions, partitions)


def test_text_keys_are_their_utf8_bytes() -> None:
    of = key_partitioner(8)
    for key in ("user-42", "ünïcødé", ""):
        assert of(key) == partition_for(key.encode(), 8)


def test_a_topic_has_at_least_one_partition() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        partition_for(b"k", 0)
    with pytest.raises(ValueError, match="at least one partition"):
        key_partitioner(0)
