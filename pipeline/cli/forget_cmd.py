"""``recloop forget USER_ID``: delete everything recloop keeps about a user."""

from __future__ import annotations

import asyncio
import time

import click

from pipeline.cli.common import partitioning, with_redis
from pipeline.clock import wall_ms
from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.stores.client import RedisClient
from pipeline.stores.forget import forget_applied
from pipeline.stores.keys import RedisKeys


@click.command()
@click.argument("user_id")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until done.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait.")
def forget(user_id: str, wait: bool, timeout: float) -> None:
    """Delete USER_ID's features, history, lists, controls and de-duplication state.

    The request goes through the controls topic (control v1 ``forget``) to the worker that
    owns the user, so no in-flight event can write the old state back: events stamped
    before the forget that arrive later are dropped. With --wait (the default) this returns
    once the worker applied it: nothing of the user is left in Redis.
    """
    settings = Settings()
    sent_after = wall_ms() - 1  # the control's ts is at or after this (producer clock)
    with EventProducer(settings) as producer:
        control_id = producer.forget(user_id)
        producer.flush()
    click.echo(f"forget requested (control {control_id})")
    if not wait:
        return
    keys = RedisKeys(settings.redis_namespace)
    parts = partitioning(settings)

    async def confirmed(client: RedisClient) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await forget_applied(client, keys, parts, user_id, sent_after):
                return True
            await asyncio.sleep(0.2)
        return False

    if with_redis(settings, confirmed):
        click.echo("done: no personal data left in Redis")
        return
    click.echo(f"not confirmed within {timeout} s: is a worker running?", err=True)
    raise SystemExit(1)
