"""``recloop segments``: segment sizes from Redis."""

from __future__ import annotations

import click
import orjson

from pipeline.cli.common import partitioning, with_redis
from pipeline.config import Settings
from pipeline.features.segments import DIMENSIONS
from pipeline.stores.keys import RedisKeys
from pipeline.stores.segments import segment_sizes


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def segments(as_json: bool) -> None:
    """Print how many users are in each segment (lifecycle, category, locale, ...)."""
    settings = Settings()
    keys = RedisKeys(settings.redis_namespace)
    parts = partitioning(settings)
    sizes = with_redis(settings, lambda client: segment_sizes(client, keys, parts))
    if as_json:
        click.echo(orjson.dumps(sizes, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        return
    for dim in DIMENSIONS:
        values = sizes.get(dim, {})
        click.echo(f"{dim}:")
        if not values:
            click.echo("  (none)")
        for value, size in sorted(values.items(), key=lambda kv: -kv[1]):
            click.echo(f"  {value:<24}{size:>10}")
