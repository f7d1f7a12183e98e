"""``recloop topics create``: create the pipeline's topics with the documented partition count.

Workers create missing topics at start too, but a deployment whose broker has topic
auto-creation off (the compose file's) runs this once before anything else, so no producer
or consumer ever meets a missing topic and nothing is created with the broker's default
partition count (partitions cap the useful workers and cannot be reduced later).
"""

from __future__ import annotations

import logging

import click

from pipeline.config import Settings
from pipeline.errors import StackError
from pipeline.kafka.topics import ensure_topics, topic_names


@click.group()
def topics() -> None:
    """Manage recloop's Kafka topics."""


@topics.command()
@click.option("--bootstrap", envvar="RECLOOP_KAFKA_BOOTSTRAP", show_envvar=True, default=None,
              help="Kafka bootstrap servers [default: 127.0.0.1:9092].")  # fmt: skip
@click.option("--partitions", envvar="RECLOOP_TOPIC_PARTITIONS", show_envvar=True, type=int,
              default=None, help="Partitions of each created topic [default: 8].")  # fmt: skip
@click.option("--replication", envvar="RECLOOP_TOPIC_REPLICATION", show_envvar=True, type=int,
              default=None, help="Replication factor of created topics [default: 1].")  # fmt: skip
def create(bootstrap: str | None, partitions: int | None, replication: int | None) -> None:
    """Create every missing recloop topic (events, items, dlq, recommendations, controls).

    Idempotent: existing topics are left as they are (a different partition count is
    reported, never changed). Exits 1 when the broker is unreachable or refuses.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    overrides: dict[str, object] = {}
    if bootstrap:
        overrides["kafka_bootstrap"] = bootstrap
    if partitions is not None:
        overrides["topic_partitions"] = partitions
    if replication is not None:
        overrides["topic_replication"] = replication
    settings = Settings(**overrides)  # type: ignore[arg-type]
    try:
        ensure_topics(settings)
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    names = ", ".join(dict.fromkeys(topic_names(settings)))
    click.echo(
        f"topics ready at {settings.kafka_bootstrap}: {names} "
        f"(created ones: {settings.topic_partitions} partitions, "
        f"replication {settings.topic_replication})"
    )
