"""``recloop experiments report``: per-arm exposure, outcomes and lift against control."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
import redis

from pipeline.config import Settings
from pipeline.lists.experiments import format_report, load_experiments, read_counters, report
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
    client = redis.Redis.from_url(settings.redis_url)
    try:
        counters, users = read_counters(client, RedisKeys(settings.redis_namespace), declared)
    finally:
        client.close()
    rows = report(declared, counters, users)
    click.echo(format_report(rows))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
        click.echo(f"wrote {json_path}")
