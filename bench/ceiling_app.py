"""The framework ceiling: a minimal Faust app doing only what every recloop batch must do.

It consumes the events topic with its own consumer group, decodes each value with orjson and
forwards it to another topic, the sends of a batch issued together and their acks awaited,
with the same Faust settings as ``agents.app.create_app`` (raw serializers, ``take_events``
batches, ``acks=-1``, memory store). What recloop's worker adds on top (features, Redis,
models, lists) is what ``bench/throughput.py`` compares against this.

Started by ``bench/throughput.py`` as ``python bench/ceiling_app.py`` with its configuration in
``CEILING_*`` environment variables (no arguments: Faust's command line parses ``argv``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import faust
import orjson

log = logging.getLogger("ceiling")


def create_app(env: dict[str, str]) -> faust.App:
    source, sink = env["CEILING_SOURCE"], env["CEILING_SINK"]
    batch_size = int(env.get("CEILING_BATCH_SIZE", "500"))
    within = float(env.get("CEILING_BATCH_WITHIN", "0.02"))
    partitions = int(env.get("CEILING_PARTITIONS", "8"))
    forward_events = env.get("CEILING_FORWARD", "1") != "0"  # 0: decode only, count on /count
    app = faust.App(
        env["CEILING_APP_ID"],
        broker=f"kafka://{env['CEILING_BOOTSTRAP']}",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=partitions,
        consumer_auto_offset_reset="earliest",
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_port=int(env["CEILING_WEB_PORT"]),
        web_in_thread=False,
        producer_acks=-1,
        store="memory://",
    )

    def topic(name: str) -> Any:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
        )

    topic(sink)
    stats = {"forwarded": 0, "bad": 0}

    @app.agent(topic(source))
    async def forward(stream: Any) -> None:
        producer = app.producer
        async for events in stream.take_events(batch_size, within=within):
            futures = []
            for event in events:
                try:
                    orjson.loads(event.value)
                except orjson.JSONDecodeError:
                    stats["bad"] += 1
                    continue
                if not forward_events:
                    stats["forwarded"] += 1
                    continue
                futures.append(
                    await producer.send(sink, event.message.key, event.value, None, None, None)
                )
            if futures:
                await asyncio.gather(*futures)
                stats["forwarded"] += len(futures)

    @app.page("/count")
    async def count(web: Any, request: Any) -> Any:
        return web.json(stats)

    return app


if __name__ == "__main__":
    faust.Worker(
        create_app(dict(os.environ)), loglevel="info", quiet=True
    ).execute_from_commandline()
