"""``recloop worker``: one worker process of the consumer group."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from pipeline.config import Settings
from pipeline.errors import RecloopError


@click.command()
@click.option(
    "--web-port",
    type=int,
    default=None,
    envvar="RECLOOP_WEB_PORT",
    show_envvar=True,
    help="Port of /metrics, /health and /ready (default 6066); one per worker on a host.",
)
@click.option(
    "--bootstrap",
    default=None,
    envvar="RECLOOP_KAFKA_BOOTSTRAP",
    show_envvar=True,
    help="Kafka bootstrap servers (default 127.0.0.1:9092).",
)
@click.option(
    "--redis-url",
    default=None,
    envvar="RECLOOP_REDIS_URL",
    show_envvar=True,
    help="Redis URL (default redis://127.0.0.1:6379/0).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="RECLOOP_DATA_DIR",
    show_envvar=True,
    help="Writable folder for Faust's local data (default <RECLOOP_STACK_DIR>/data).",
)
@click.option(
    "--uvloop",
    "uvloop_mode",
    type=click.Choice(["auto", "on", "off"]),
    default=None,
    envvar="RECLOOP_WORKER_UVLOOP",
    show_envvar=True,
    help="Event loop: uvloop when installed (auto, the default), uvloop or fail (on), "
    "asyncio's own (off).",
)
@click.option("--loglevel", default="info", show_default=True, help="Worker log level.")
def worker(
    web_port: int | None,
    bootstrap: str | None,
    redis_url: str | None,
    data_dir: Path | None,
    uvloop_mode: str | None,
    loglevel: str,
) -> None:
    """Consume events, keep features and models, publish fresh lists.

    Start as many as there are partitions; they share the work through the consumer group.
    """
    # Faust is imported here: the rest of the CLI must not pay for it.
    import faust

    from agents.app import create_app
    from agents.faust_config import event_loop_policy
    from pipeline.kafka.topics import ensure_topics
    from pipeline.worker.gc_policy import apply_gc_policy

    overrides: dict[str, object] = {}
    if web_port is not None:
        overrides["web_port"] = web_port
    if bootstrap:
        overrides["kafka_bootstrap"] = bootstrap
    if redis_url:
        overrides["redis_url"] = redis_url
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if uvloop_mode is not None:
        overrides["worker_uvloop"] = uvloop_mode
    settings = Settings().model_copy(update=overrides)
    try:
        policy = event_loop_policy(settings)
        if policy is not None:  # before the app or the worker touch a loop
            asyncio.set_event_loop_policy(policy)
        apply_gc_policy(settings)
        app = create_app(settings)  # checks the data folder before anything connects
        ensure_topics(settings)
    except RecloopError as exc:
        raise click.ClickException(str(exc)) from exc
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
