"""``recloop experiments report``: user-level metrics per arm and their lift against control."""

from __future__ import annotations

import time
from pathlib import Path

import click
import orjson

from pipeline.cli.common import partitioning, with_redis
from pipeline.config import Settings
from pipeline.lists.experiment_report import format_report
from pipeline.lists.experiments import load_experiments
from pipeline.stores.experiments import read_report
from pipeline.stores.keys import RedisKeys


@click.group()
def experiments() -> None:
    """A/B experiments declared in RECLOOP_EXPERIMENTS_FILE."""


@experiments.command("report")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the report as JSON.",
)
def report_cmd(json_path: Path | None) -> None:
    """Per arm: users, the sample-ratio check, each metric and its comparison with control.

    Metrics are analysed per user (the unit that is randomised): click-through, completion,
    skip rate, events per user and the return rates of RECLOOP_EXPERIMENT_RETURN_SECONDS,
    each with the 95 % interval of the difference and of the lift, and a p-value.
    """
    settings = Settings()
    declared = load_experiments(settings.experiments_file)
    keys = RedisKeys(settings.redis_namespace)
    parts = partitioning(settings)
    now_ms = time.time_ns() // 1_000_000
    rows = with_redis(
        settings,
        lambda client: read_report(
            client, keys, parts, declared, windows=settings.return_windows, now_ms=now_ms
        ),
    )
    click.echo(format_report(rows))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
        click.echo(f"wrote {json_path}")
