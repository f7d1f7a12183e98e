"""``recloop recs USER_ID``: a user's current list (with reasons) and features, from Redis."""

from __future__ import annotations

import time

import click
import orjson

from pipeline.cli.common import with_redis
from pipeline.config import Settings
from pipeline.stores.codec import history_json
from pipeline.stores.keys import RedisKeys
from pipeline.stores.reads import user_record


def _fmt_ts(ms: int | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


@click.command()
@click.argument("user_id")
@click.option("--redis-url", default=None, envvar="RECLOOP_REDIS_URL", show_envvar=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw documents as JSON.")
def recs(user_id: str, redis_url: str | None, as_json: bool) -> None:
    """Print USER_ID's recommendation list and features as downstream services see them."""
    settings = Settings.model_validate({"redis_url": redis_url} if redis_url else {})
    keys = RedisKeys(settings.redis_namespace)
    record = with_redis(settings, lambda client: user_record(client, keys, user_id, history=10))
    doc, feats, history = record["list"], record["features"], record["history"]
    if as_json:
        out = {
            "recommendations": doc,
            "features": feats,
            "history": [list(history_json(h).values()) for h in history],
        }
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    if doc is None and not feats:
        click.echo(f"no data for user {user_id!r} (never seen, forgotten or expired)")
        raise SystemExit(1)
    click.echo(f"user {user_id}")
    if doc is not None:
        click.echo(
            f"list generated {_fmt_ts(doc['generated_ts'])} by model {doc['model_version']}, "
            f"trigger {doc['trigger_event_id'] or 'background refresh'}"
        )
        for rank, entry in enumerate(doc["items"], 1):
            click.echo(
                f"  {rank:>2}. {entry['item_id']:<24} {entry['score']:>9.4f}  {entry['reason']}"
            )
    if feats:
        click.echo("features")
        for name in sorted(feats):
            value = feats[name]
            if name.endswith("_ts"):
                value = f"{value} ({_fmt_ts(int(value))})"
            click.echo(f"  {name:<16} {value}")
    if history:
        click.echo("last interactions (newest first)")
        for h in history:
            extra = f" completion={h.completion:.2f}" if h.completion is not None else ""
            click.echo(
                f"  {_fmt_ts(h.ts)}  {h.kind:<5} {h.item_id:<24} weight={h.weight:+.2f}{extra}"
            )
