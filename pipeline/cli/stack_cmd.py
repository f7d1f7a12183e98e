"""``recloop stack``: start, stop and inspect the local Kafka + Redis stack.

The stack is two detached processes (see :mod:`pipeline.tooling.stack`), so ``up`` returns once
both answer and the services outlive the command; ``down`` stops them by pid.
Ports and the directory come from ``Settings`` (``RECLOOP_STACK_*``); options override.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pipeline.config import Settings
from pipeline.tooling.stack import LocalStack, StackError, StackStatus
from pipeline.tooling.stack_setup import ensure_redis_server

F = TypeVar("F", bound=Callable[..., Any])


def _stack_options(func: F) -> F:
    """Options shared by every sub-command; unset ones fall back to ``Settings``."""
    options = [
        click.option(
            "--dir",
            "stack_dir",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="RECLOOP_STACK_DIR",
            show_envvar=True,
            help="Data, logs and jars of the stack [default: .recloop].",
        ),
        click.option(
            "--kafka-port",
            type=int,
            envvar="RECLOOP_STACK_KAFKA_PORT",
            show_envvar=True,
            help="Kafka broker port [default: 9092].",
        ),
        click.option(
            "--controller-port",
            type=int,
            envvar="RECLOOP_STACK_KAFKA_CONTROLLER_PORT",
            show_envvar=True,
            help="KRaft controller port [default: 9093].",
        ),
        click.option(
            "--redis-port",
            type=int,
            envvar="RECLOOP_STACK_REDIS_PORT",
            show_envvar=True,
            help="Redis port [default: 6379].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _build(
    stack_dir: Path | None,
    kafka_port: int | None,
    controller_port: int | None,
    redis_port: int | None,
) -> LocalStack:
    # model_validate({}) reads RECLOOP_* exactly like Settings(), and mypy accepts it
    # without the pydantic plugin (Field("default") positionals look required to mypy)
    return LocalStack.from_settings(
        Settings.model_validate({}),
        stack_dir=stack_dir,
        kafka_port=kafka_port,
        controller_port=controller_port,
        redis_port=redis_port,
    )


def _report(status: StackStatus) -> None:
    for service in (status.kafka, status.redis):
        state = f"up (pid {service.pid})" if service.up else "down"
        click.echo(f"{service.name}: {service.endpoint} {state}")


@click.group()
def stack() -> None:
    """Local Kafka (KRaft, from Maven Central) and Redis, without Docker."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # our own progress (jar fetch, apt-get) is worth seeing; client libraries' chatter is not
    logging.getLogger("pipeline").setLevel(logging.INFO)


@stack.command()
@_stack_options
def up(
    stack_dir: Path | None,
    kafka_port: int | None,
    controller_port: int | None,
    redis_port: int | None,
) -> None:
    """Start Kafka and Redis (if not running) and wait until both answer."""
    local = _build(stack_dir, kafka_port, controller_port, redis_port)
    started = time.monotonic()
    try:
        redis_new = local.start_redis()
        kafka_new = local.start_kafka()
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    elapsed = time.monotonic() - started
    status = local.status()
    for service, new in ((status.kafka, kafka_new), (status.redis, redis_new)):
        how = "started" if new else "already running"
        click.echo(f"{service.name}: {service.endpoint} ({how}, pid {service.pid})")
    if kafka_new or redis_new:
        click.echo(f"stack up in {elapsed:.1f} s; logs in {local.stack_dir}")
    else:
        click.echo("stack already up")


@stack.command()
@_stack_options
def down(
    stack_dir: Path | None,
    kafka_port: int | None,
    controller_port: int | None,
    redis_port: int | None,
) -> None:
    """Stop the Kafka and Redis processes this stack started (data is kept)."""
    local = _build(stack_dir, kafka_port, controller_port, redis_port)
    stopped = local.stop()
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "stack was not running")


@stack.command()
@_stack_options
def status(
    stack_dir: Path | None,
    kafka_port: int | None,
    controller_port: int | None,
    redis_port: int | None,
) -> None:
    """Say what is up; exit 0 when Kafka and Redis both answer, 1 otherwise."""
    current = _build(stack_dir, kafka_port, controller_port, redis_port).status()
    _report(current)
    click.get_current_context().exit(0 if current.all_up else 1)


@stack.command()
@_stack_options
def setup(
    stack_dir: Path | None,
    kafka_port: int | None,
    controller_port: int | None,
    redis_port: int | None,
) -> None:
    """Fetch the Kafka jars and make sure redis-server is installed (used by make setup)."""
    local = _build(stack_dir, kafka_port, controller_port, redis_port)
    try:
        libs = local.ensure_kafka_jars()
        redis_server = ensure_redis_server()
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"kafka jars: {libs}")
    click.echo(f"redis-server: {redis_server}")
