"""Experiment counters in Redis: what the worker increments and the report reads."""

from __future__ import annotations

import redis.asyncio as aioredis

from pipeline.lists.experiments import Experiment
from pipeline.stores.keys import RedisKeys


async def read_counters(
    client: aioredis.Redis, keys: RedisKeys, experiments: tuple[Experiment, ...]
) -> tuple[dict[tuple[str, str], dict[str, int]], dict[tuple[str, str], int]]:
    """Outcome counters and exposed-user counts of every arm."""
    arms = [(e.name, v.name) for e in experiments for v in e.variants]
    async with client.pipeline(transaction=False) as pipe:
        for name, arm in arms:
            pipe.hgetall(keys.experiment(name, arm))
            pipe.pfcount(keys.experiment_users(name, arm))
        replies = await pipe.execute()
    counters: dict[tuple[str, str], dict[str, int]] = {}
    users: dict[tuple[str, str], int] = {}
    for i, arm_key in enumerate(arms):
        raw, n_users = replies[2 * i], replies[2 * i + 1]
        counters[arm_key] = {k.decode(): int(v) for k, v in raw.items()}
        users[arm_key] = int(n_users)
    return counters, users
