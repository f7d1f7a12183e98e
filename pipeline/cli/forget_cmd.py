"""``recloop forget USER_ID``: delete everything recloop keeps about a user."""

from __future__ import annotations

import time

import click
import orjson
import redis

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.stores.keys import RedisKeys


def forgotten(client: redis.Redis, keys: RedisKeys, user_id: str) -> bool:
    """True once no behavioural key is left and the list (if any) is not personalised."""
    if client.exists(keys.features(user_id), keys.history(user_id), keys.excluded(user_id)):
        return False
    raw = client.get(keys.recs(user_id))
    return raw is None or orjson.loads(raw).get("personalized") is False


@click.command()
@click.argument("user_id")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until done.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait.")
def forget(user_id: str, wait: bool, timeout: float) -> None:
    """Delete USER_ID's features, history, lists and de-duplication state.

    The request goes through the controls topic (control v1 ``forget``) to the worker that
    owns the user, so no in-flight event can write the old state back. Until the user
    returns with a new event they get non-personalised lists.
    """
    settings = Settings()
    with EventProducer(settings) as producer:
        control_id = producer.forget(user_id)
        producer.flush()
    click.echo(f"forget requested (control {control_id})")
    if not wait:
        return
    keys = RedisKeys(settings.redis_namespace)
    client = redis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if forgotten(client, keys, user_id):
                click.echo("done: no personal data left in Redis")
                return
            time.sleep(0.2)
    finally:
        client.close()
    click.echo(f"not confirmed within {timeout} s: is a worker running?", err=True)
    raise SystemExit(1)
