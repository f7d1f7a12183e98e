"""``recloop explain USER_ID``: what data placed each item in a user's list."""

from __future__ import annotations

import click
import orjson

from pipeline.cli.common import with_redis
from pipeline.config import Settings
from pipeline.stores.reads import explanation


@click.command()
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain(user_id: str, as_json: bool) -> None:
    """Show USER_ID's list and the data behind it: signals and weights, segments, controls."""
    settings = Settings()
    doc = with_redis(settings, lambda client: explanation(client, settings, user_id))
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
