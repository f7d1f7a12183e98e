"""Opening Redis: one factory for the worker, the API, the CLI and the tests.

recloop runs unchanged on a single Redis (with replicas or Sentinel) and on a Redis Cluster:
every command it sends touches one hash slot (README "Redis keys"), so the only difference
is the client. ``RECLOOP_REDIS_CLUSTER`` chooses it:

* ``auto`` (default): ask the server once, when the client is built (``INFO cluster``,
  ``cluster_enabled:1``). The same URL then works for both, which is what a demo, a test run
  or a migration wants; the probe costs one round trip per process;
* ``on`` / ``off``: no probe. Use it where the server may be away when the process starts
  (``recloop serve`` starts without Redis and reports it on ``/ready``: under ``auto`` it
  probes once at start, and takes a server that does not answer for a single Redis) or
  where ``INFO`` is not allowed.

A cluster client (``redis.asyncio.RedisCluster``) follows ``MOVED``/``ASK`` redirections
and refreshes its slot map itself; its non-transactional pipeline groups commands by node
and sends one batch per node, concurrently (never its transactional pipeline, which runs
each queued command in a thread).
"""

from __future__ import annotations

import logging
from typing import Any, TypeAlias

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection

from pipeline.config import Settings
from pipeline.stores.connection import fast_connection

log = logging.getLogger(__name__)

RedisClient: TypeAlias = aioredis.Redis | aioredis.RedisCluster
"""What every Redis adapter of recloop accepts: a single Redis or a cluster."""

SyncRedisClient: TypeAlias = redis.Redis | redis.RedisCluster

PROBE_TIMEOUT_SECONDS = 2.0


def _enabled(info: Any) -> bool:
    return str(info.get("cluster_enabled", 0)) == "1"


async def is_cluster(url: str, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """Whether the server at ``url`` runs in cluster mode (raises when it does not answer)."""
    probe = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return _enabled(await probe.info("cluster"))
    finally:
        await probe.aclose()


def is_cluster_sync(url: str, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """``is_cluster`` without an event loop (raises when the server does not answer)."""
    probe = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return _enabled(probe.info("cluster"))
    finally:
        probe.close()


def client_for(url: str, *, cluster: bool, **options: Any) -> RedisClient:
    """An async client of the chosen kind (no I/O: it connects on first use).

    Its connections pack commands and take buffered replies in C
    (``pipeline.stores.connection``).
    """
    client: RedisClient
    if cluster:
        client = aioredis.RedisCluster.from_url(url, **options)
        kwargs = client.nodes_manager.connection_kwargs
        kwargs["connection_class"] = fast_connection(kwargs.get("connection_class", Connection))
        for node in client.startup_nodes:
            node.connection_class = fast_connection(node.connection_class)
    else:
        client = aioredis.Redis.from_url(url, **options)
        pool = client.connection_pool
        pool.connection_class = fast_connection(pool.connection_class)
    return client


async def open_redis(settings: Settings, **options: Any) -> RedisClient:
    """The async client ``settings`` ask for (``auto``: probes the server; may raise)."""
    mode = settings.redis_cluster
    cluster = mode == "on" or (mode == "auto" and await is_cluster(settings.redis_url))
    log.debug("redis client cluster=%s mode=%s", cluster, mode)
    return client_for(settings.redis_url, cluster=cluster, **options)


def sync_redis(url: str, *, mode: str = "auto", **options: Any) -> SyncRedisClient:
    """A blocking client (simulator, demo, benchmarks, tests), chosen like ``open_redis``."""
    cluster = mode == "on" or (mode == "auto" and is_cluster_sync(url))
    if cluster:
        return redis.RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)
