"""Everything one serve process holds: settings, clients, views. Built by ``create_api``.

Clients connect lazily (on first use), so a serve process starts while Redis or Kafka is
away and reports it on ``/ready`` instead of crashing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Response
from redis.exceptions import RedisError

from pipeline.config import Settings
from pipeline.errors import RecloopError
from pipeline.kafka.partitioning import key_partitioner
from pipeline.serve.auth import ApiKeys
from pipeline.serve.catalogue import CatalogueView
from pipeline.serve.ingest import AckingSender
from pipeline.serve.kafka_view import KafkaView
from pipeline.serve.overview import OverviewSampler
from pipeline.stores.client import RedisClient, client_for, is_cluster
from pipeline.stores.keys import Partitioning, RedisKeys
from pipeline.stores.reads import shown_items, user_document

log = logging.getLogger(__name__)


class ApiError(RecloopError):
    """An error answered with :class:`pipeline.serve.models.ErrorBody`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        super().__init__(detail)


def error_response(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An ``ErrorBody`` response."""
    body = orjson.dumps({"error": code, "detail": detail})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def invalid_response(detail: str, errors: Sequence[tuple[int | None, str, str]]) -> Response:
    """A 422 ``InvalidBody`` response."""
    body = orjson.dumps(
        {
            "error": "invalid",
            "detail": detail,
            "errors": [{"index": i, "reason": r, "detail": d} for i, r, d in errors],
        }
    )
    return Response(body, status_code=422, media_type="application/json")


@dataclass
class Services:
    """The clients and views of one serve process."""

    settings: Settings
    keys: ApiKeys
    keys_layout: RedisKeys
    partitions: Partitioning
    redis: RedisClient
    sender: AckingSender
    kafka: KafkaView
    catalogue: CatalogueView
    overview: OverviewSampler

    @classmethod
    def build(cls, settings: Settings, *, sample_interval: float = 2.0) -> Services:
        """Create (not connect) every client."""
        layout = RedisKeys(settings.redis_namespace)
        client = client_for(
            settings.redis_url, cluster=settings.redis_cluster == "on", max_connections=256
        )
        partitions = Partitioning(
            settings.topic_partitions, key_partitioner(settings.topic_partitions)
        )
        kafka = KafkaView(settings)
        return cls(
            settings=settings,
            keys=ApiKeys(settings.api_read_key, settings.api_admin_key),
            keys_layout=layout,
            partitions=partitions,
            redis=client,
            sender=AckingSender(settings),
            kafka=kafka,
            catalogue=CatalogueView(client, layout),
            overview=OverviewSampler(
                settings, redis=client, partitions=partitions, kafka=kafka, interval=sample_interval
            ),
        )

    async def resolve_redis(self) -> None:
        """Under ``RECLOOP_REDIS_CLUSTER=auto``, ask the server once (at start) if it is a cluster.

        ``build`` connects nothing (the OpenAPI export builds the app without Redis); a server
        that does not answer now is taken for a single Redis, with a warning.
        """
        if self.settings.redis_cluster != "auto":
            return
        try:
            cluster = await is_cluster(self.settings.redis_url)
        except (RedisError, OSError) as exc:
            log.warning(
                "redis did not answer the cluster probe; assuming a single Redis"
                " (set RECLOOP_REDIS_CLUSTER=on|off) error=%s",
                type(exc).__name__,
            )
            return
        if cluster:
            plain = self.redis
            client = client_for(self.settings.redis_url, cluster=True, max_connections=256)
            self.redis = self.catalogue.client = self.overview.redis = client
            await plain.aclose()

    async def user_view(self, user_id: str) -> dict[str, Any] | None:
        """The user document of ``GET /v1/users/{id}`` (None: nothing is known)."""
        doc = await user_document(self.redis, self.settings, user_id)
        if doc is None:
            return None
        await self.catalogue.refresh()
        doc["items"] = self.catalogue.summaries(shown_items(doc))
        return doc

    async def ready(self) -> tuple[bool, bool]:
        """Whether Redis answers PING and Kafka a metadata request."""

        async def redis_ok() -> bool:
            try:
                return bool(await asyncio.wait_for(self.redis.ping(), 2.0))
            except Exception:
                return False

        async def kafka_ok() -> bool:
            # bounded: a broker that does not answer must not hold the probe for long
            try:
                return await asyncio.wait_for(asyncio.to_thread(self.kafka.metadata_ok), 4.0)
            except TimeoutError:
                return False

        redis_up, kafka_up = await asyncio.gather(redis_ok(), kafka_ok())
        return redis_up, kafka_up

    async def close(self) -> None:
        """Stop the sampler and release every connection."""
        await self.overview.stop()
        await asyncio.to_thread(self.sender.close)
        await asyncio.to_thread(self.kafka.close)
        await self.redis.aclose()
