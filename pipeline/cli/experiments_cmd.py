"""``recloop experiments report``: per-arm exposure, outcomes and lift against control."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from pipeline.cli.common import partitioning, with_redis
from pipeline.config import Settings
from pipeline.lists.experiment_report import format_report, report
from pipeline.lists.experiments import load_experiments
from pipeline.stores.experiments import read_counters
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
    """Print each arm's users, lists, click-through, completion, skips and lift."""
    settings = Settings()
    declared = load_experiments(settings.experiments_file)
    keys = RedisKeys(settings.redis_namespace)
    parts = partitioning(settings)
    counters, users = with_redis(
        settings, lambda client: read_counters(client, keys, parts, declared)
    )
    rows = report(declared, counters, users)
    click.echo(format_report(rows))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
        click.echo(f"wrote {json_path}")
