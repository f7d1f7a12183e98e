"""``recloop topics create`` against the real test broker: counts, idempotence, refusal."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import CliRunner
from confluent_kafka.admin import AdminClient

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.tooling.probes import free_port


def _env(settings: Settings) -> dict[str, str]:
    # exactly what compose's `topics` service gives the command: variables, no options
    names = ("TOPIC_EVENTS", "TOPIC_ITEMS", "TOPIC_DLQ", "TOPIC_RECOMMENDATIONS", "TOPIC_CONTROLS")
    env = settings.to_env()
    return {f"RECLOOP_{n}": env[f"RECLOOP_{n}"] for n in names}


def _partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return {name: len(topics[name].partitions) for name in names}


def test_creates_every_topic_with_the_partition_count_then_leaves_them(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    names = [
        settings.topic_events,
        settings.topic_items,
        settings.topic_dlq,
        settings.topic_recommendations,
        settings.topic_controls,
    ]
    env = {**_env(settings), "RECLOOP_TOPIC_PARTITIONS": "3"}
    args = ["topics", "create", "--bootstrap", settings.kafka_bootstrap]
    first = CliRunner().invoke(main, args, env=env)
    assert first.exit_code == 0, first.output
    assert "3 partitions" in first.output
    assert _partitions(settings.kafka_bootstrap, names) == dict.fromkeys(names, 3)

    # again with 3: nothing to do
    same = CliRunner().invoke(main, args, env=env)
    assert same.exit_code == 0, same.output
    # asking for 5: refused, nothing changes (users' partitions, and their keys, would move)
    again = CliRunner().invoke(main, [*args, "--partitions", "5"], env=env)
    assert again.exit_code == 1, again.output
    assert "RECLOOP_TOPIC_PARTITIONS" in again.output
    assert _partitions(settings.kafka_bootstrap, names) == dict.fromkeys(names, 3)


def test_refusal_and_an_unreachable_broker_exit_1_with_the_reason(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    env = _env(settings)
    refused = CliRunner().invoke(
        main,
        ["topics", "create", "--bootstrap", settings.kafka_bootstrap, "--replication", "3"],
        env=env,
    )
    assert refused.exit_code == 1
    assert "RECLOOP_TOPIC_REPLICATION" in refused.output

    nowhere = f"127.0.0.1:{free_port()}"
    unreachable = CliRunner().invoke(main, ["topics", "create", "--bootstrap", nowhere], env=env)
    assert unreachable.exit_code == 1
    assert f"no Kafka broker answered at {nowhere}" in unreachable.output
