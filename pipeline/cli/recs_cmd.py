"""``recloop recs USER_ID``: a user's current list (with reasons) and features, from Redis."""

from __future__ import annotations

import time

import click
import orjson
import redis

from pipeline.config import Settings
from pipeline.stores.keys import RedisKeys


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
    client = redis.Redis.from_url(settings.redis_url)
    with client.pipeline(transaction=False) as pipe:
        pipe.get(keys.recs(user_id))
        pipe.hgetall(keys.features(user_id))
        pipe.lrange(keys.history(user_id), 0, 9)
        raw_recs, raw_features, raw_history = pipe.execute()
    client.close()
    doc = orjson.loads(raw_recs) if raw_recs else None
    feats = {k.decode(): v.decode() for k, v in raw_features.items()}
    history = [orjson.loads(h) for h in raw_history]
    if as_json:
        out = {"recommendations": doc, "features": feats, "history": history}
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
        for item_id, ts, kind, weight, completion in history:
            extra = f" completion={completion:.2f}" if completion is not None else ""
            click.echo(f"  {_fmt_ts(ts)}  {kind:<5} {item_id:<24} weight={weight:+.2f}{extra}")
