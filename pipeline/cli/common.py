"""What the click shells share: one async read against Redis, the progress-bar switch."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from pipeline.config import Settings
from pipeline.kafka.partitioning import key_partitioner
from pipeline.stores.client import RedisClient, open_redis
from pipeline.stores.keys import Partitioning

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def with_redis(settings: Settings, read: Callable[[RedisClient], Awaitable[T]]) -> T:
    """Run ``read`` with a Redis client from ``settings`` and close the client afterwards.

    The CLI reads through the same async read models (``pipeline.stores``) as the HTTP API,
    on a single Redis or a cluster (``RECLOOP_REDIS_CLUSTER``).
    """

    async def run() -> T:
        client = await open_redis(settings)
        try:
            return await read(client)
        finally:
            await client.aclose()

    return asyncio.run(run())


def show_progress(quiet: bool) -> bool:
    """Whether to draw a progress bar: on stderr, only for a person watching a terminal.

    Off with ``--quiet`` and whenever stderr is not a TTY (CI logs, pipes, files), where a
    bar would only be noise; results still go to stdout either way.
    """
    return not quiet and sys.stderr.isatty()


def quiet_option(func: F) -> F:
    """``--quiet/-q``: no progress bar."""
    return click.option(
        "--quiet", "-q", is_flag=True, help="No progress bar (it is off anyway when not a TTY)."
    )(func)


def partitioning(settings: Settings) -> Partitioning:
    """Users' partitions (Kafka's default partitioner over ``topic_partitions``)."""
    return Partitioning(settings.topic_partitions, key_partitioner(settings.topic_partitions))
