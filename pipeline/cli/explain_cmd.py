"""``recloop explain USER_ID``: what data placed each item in a user's list."""

from __future__ import annotations

from typing import Any

import click
import orjson
import redis

from pipeline.config import Settings
from pipeline.features.controls import from_fields
from pipeline.lists.diversity import recency_weights
from pipeline.lists.experiments import assign, load_experiments, variant_params
from pipeline.stores.keys import RedisKeys
from pipeline.worker.processor import engine_params


def explanation(client: redis.Redis, settings: Settings, user_id: str) -> dict[str, Any]:
    """Everything ``explain`` shows, as data (the HTTP API serves the same document)."""
    keys = RedisKeys(settings.redis_namespace)
    with client.pipeline(transaction=False) as pipe:
        pipe.get(keys.recs(user_id))
        pipe.hgetall(keys.features(user_id))
        pipe.lrange(keys.history(user_id), 0, -1)
        pipe.hgetall(keys.controls(user_id))
        for key in keys.user_keys(user_id):
            pipe.ttl(key)
        replies = pipe.execute()
    raw_recs, raw_feats, raw_history, raw_controls = replies[:4]
    ttls = dict(zip(keys.user_keys(user_id), replies[4:], strict=True))
    feats = {k.decode(): v.decode() for k, v in raw_feats.items()}
    controls = from_fields({k.decode(): v.decode() for k, v in raw_controls.items()})
    history = [orjson.loads(h) for h in raw_history]  # newest first
    params = engine_params(settings)
    arm = assign(load_experiments(settings.experiments_file), user_id)
    personalized = controls.personalization
    if arm is not None:
        params, arm_personalizes = variant_params(params, arm[1])
        personalized = personalized and arm_personalizes
    positives = [h for h in reversed(history) if h[3] > 0][-params.context_size :]
    recency = recency_weights(len(positives), params.recency_decay)
    n_events = int(feats.get("n_events", 0))
    return {
        "user_id": user_id,
        "list": orjson.loads(raw_recs) if raw_recs else None,
        "personalized": personalized,
        "experiment": {"name": arm[0].name, "variant": arm[1].name} if arm else None,
        "signals": {
            "recent_positives": [
                {"item_id": h[0], "type": h[2], "signal": h[3], "weight": round(h[3] * r, 4)}
                for h, r in zip(reversed(positives), reversed(recency), strict=True)
            ],
            "recent_negatives": [
                {"item_id": h[0], "type": h[2], "signal": h[3]} for h in history if h[3] < 0
            ][:10],
            "category_affinity": orjson.loads(feats.get("affinity", "{}")),
            "declared_interests": list(controls.declared),
            "declared_prior_weight": round(
                controls.prior(
                    n_events, weight=params.declared_weight, halfway=params.declared_halfway
                ),
                4,
            ),
            "score_weights": {
                "co_occurrence": 1.0,
                "category": params.category_weight,
                "popularity": params.popularity_weight,
                "trend": params.trend_weight,
                "ranker_power": params.ranker_power,
                "exploration_share": params.exploration_share,
                "category_cap": params.category_cap,
            },
        },
        "segments": {k[len("segment_") :]: v for k, v in feats.items() if k.startswith("segment_")},
        "controls": {
            "muted_categories": sorted(controls.muted_categories),
            "muted_creators": sorted(controls.muted_creators),
            "muted_items": sorted(controls.muted_items),
            "not_interested": controls.not_interested,
            "personalization": "on" if controls.personalization else "off",
        },
        "features": feats,
        "stored_keys": {key: ttl for key, ttl in ttls.items() if ttl != -2},
    }


@click.command()
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain(user_id: str, as_json: bool) -> None:
    """Show USER_ID's list and the data behind it: signals and weights, segments, controls."""
    settings = Settings()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        doc = explanation(client, settings, user_id)
    finally:
        client.close()
    if as_json:
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    if doc["list"] is None and not doc["features"]:
        click.echo(f"recloop keeps nothing about {user_id!r}")
        return
    exp = doc["experiment"]
    click.echo(f"user {user_id}: personalised={doc['personalized']}, "
               f"experiment={exp['name'] + '/' + exp['variant'] if exp else 'none'}")  # fmt: skip
    if doc["list"]:
        click.echo("list (why each item is there):")
        for rank, entry in enumerate(doc["list"]["items"], 1):
            click.echo(f"  {rank:>2}. {entry['item_id']:<20} {entry['reason']}")
    sig = doc["signals"]
    click.echo("signals used:")
    click.echo("  recent positives (newest first, weight = signal x recency):")
    for p in sig["recent_positives"][:10]:
        click.echo(f"    {p['type']:<5} {p['item_id']:<20} weight {p['weight']:+.3f}")
    for n in sig["recent_negatives"]:
        click.echo(f"    skip  {n['item_id']:<20} pushes similar items down ({n['signal']:+.2f})")
    aff = sorted(sig["category_affinity"].items(), key=lambda kv: -kv[1])
    click.echo("  category affinity: " + ", ".join(f"{k} {v:+.2f}" for k, v in aff[:6]))
    if sig["declared_interests"]:
        click.echo(
            f"  declared interests {', '.join(sig['declared_interests'])}: prior weight "
            f"{sig['declared_prior_weight']} (their items score x (1 + weight); it fades as "
            "behaviour accumulates)"
        )
    click.echo("  score = " + ", ".join(f"{k} {v}" for k, v in sig["score_weights"].items()))
    click.echo("segments: " + ", ".join(f"{k}={v}" for k, v in doc["segments"].items()))
    c = doc["controls"]
    click.echo(
        f"controls: personalization {c['personalization']}; muted categories "
        f"{c['muted_categories'] or '-'}, creators {c['muted_creators'] or '-'}, items "
        f"{c['muted_items'] or '-'}; not interested {list(c['not_interested']) or '-'}"
    )
    click.echo("stored about this user (key: seconds to expiry):")
    for key, ttl in doc["stored_keys"].items():
        click.echo(f"  {key}: {ttl}")
