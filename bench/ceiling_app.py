"""The framework ceiling: a minimal Faust app doing only what every recloop batch must do.

It consumes the events topic with its own consumer group in the worker's batches
(``agents.batches.event_batches``: ``noack_take``, gathered under a backlog), decodes each
value with orjson, forwards it to another topic (the sends of a batch issued together, their
acks awaited) and only then acknowledges the batch's events, as the worker does once a
batch's effects are durable. What recloop's worker adds on top (features, Redis, models,
lists) is what ``bench/throughput.py`` compares against this.

The app is built from exactly the worker's Faust settings and event loop
(``agents.faust_config.faust_settings`` and ``event_loop_policy`` of the same ``Settings``)
and the worker's garbage-collector policy (``pipeline.worker.gc_policy``): only the agent
body differs, so the worker/ceiling ratio measures recloop's own cost.

Started by ``bench/throughput.py`` (``harness.ceiling.CeilingProcess``) as
``python bench/ceiling_app.py`` with the run's settings in ``RECLOOP_*`` variables and its own
two in ``CEILING_SINK`` (output topic) and ``CEILING_FORWARD`` (``0``: decode only, no sends;
progress on ``/count``). No arguments: Faust's command line parses ``argv``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import faust
import orjson

from agents.batches import event_batches
from agents.faust_config import event_loop_policy, faust_settings
from agents.transport import new_app
from pipeline.config import Settings
from pipeline.worker.gc_policy import apply_gc_policy, freeze_survivors


def create_app(settings: Settings, sink: str, *, forward: bool = True) -> faust.App:
    """The ceiling app on ``settings`` (the worker's), forwarding to ``sink``."""
    app = new_app(settings.app_id, settings.consumer_fetch_max_wait_ms, **faust_settings(settings))

    def topic(name: str) -> Any:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
        )

    topic(sink)
    stats = {"forwarded": 0, "bad": 0}

    @app.agent(topic(settings.topic_events))
    async def decode_and_forward(stream: Any) -> None:
        producer = app.producer
        async for events, _ in event_batches(app, stream, settings):
            futures, decoded = [], 0
            for event in events:
                try:
                    orjson.loads(event.value)
                except orjson.JSONDecodeError:
                    stats["bad"] += 1
                    continue
                decoded += 1
                if forward:
                    futures.append(
                        await producer.send(sink, event.message.key, event.value, None, None, None)
                    )
            if futures:
                await asyncio.gather(*futures)
            stats["forwarded"] += decoded
            for event in events:
                event.ack()

    @app.task  # type: ignore[untyped-decorator]
    async def freeze() -> None:
        freeze_survivors(settings)  # as the worker does once ready

    @app.page("/count")
    async def count(web: Any, request: Any) -> Any:
        return web.json(stats)

    return app


def main() -> None:
    settings = Settings()
    policy = event_loop_policy(settings)
    if policy is not None:  # as `recloop worker` does, before anything touches a loop
        asyncio.set_event_loop_policy(policy)
    apply_gc_policy(settings)  # the worker's collector policy too
    app = create_app(
        settings, os.environ["CEILING_SINK"], forward=os.environ.get("CEILING_FORWARD", "1") != "0"
    )
    faust.Worker(app, loglevel="info", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
