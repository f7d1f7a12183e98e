"""``recloop dlq list|redrive``: inspect dead letters and send fixed ones back to their topic."""

from __future__ import annotations

from collections import Counter

import click
import orjson

from pipeline.clock import wall_ms
from pipeline.config import Settings
from schemas.dead_letter import RejectReason

REASONS = click.Choice([r.value for r in RejectReason])


@click.group()
def dlq() -> None:
    """Dead letters: what was refused and why; re-drive them after a fix."""


@dlq.command("list")
@click.option("--reason", type=REASONS, default=None, help="Only letters of this reason.")
@click.option("--json", "as_json", is_flag=True, help="Print the dead-letter v1 documents.")
def list_letters(reason: str | None, as_json: bool) -> None:
    """Count dead letters by reason; with --reason, list them (oldest first)."""
    from pipeline.kafka.dead_letters import dead_letters

    settings = Settings()
    docs = [d for d in dead_letters(settings) if reason is None or d.get("reason") == reason]
    if as_json:
        for doc in docs:
            click.echo(orjson.dumps(doc).decode())
        return
    if reason is None:
        counts = Counter(str(d.get("reason")) for d in docs)
        click.echo(f"{len(docs)} dead letter(s) on {settings.topic_dlq}")
        for name, count in counts.most_common():
            click.echo(f"  {name:<22} {count}")
        return
    click.echo(f"{len(docs)} dead letter(s) with reason {reason}")
    for d in docs:
        where = f"{d.get('source_topic')}[{d.get('source_partition')}]@{d.get('source_offset')}"
        click.echo(f"  {where}  {d.get('detail')}")


@dlq.command()
@click.option("--reason", type=REASONS, required=True, help="Re-drive the letters of this reason.")
@click.option("--force", is_flag=True, help="Also send originals the workers would refuse again.")
@click.option("--dry-run", is_flag=True, help="Say what would be sent; send nothing.")
def redrive(reason: str, force: bool, dry_run: bool) -> None:
    """Send the original bytes of REASON's dead letters back to their source topic.

    Repeating it is harmless: workers ignore an event whose event_id they already applied.
    Originals that the workers' parser refuses now are skipped unless --force; truncated
    originals are always skipped. Exits 1 when some letters were skipped.
    """
    from pipeline.events.redrive import Redrive, parse_letter, plan_redrive, source_kinds
    from pipeline.kafka.dead_letters import dead_letters
    from pipeline.kafka.producer import EventProducer

    settings = Settings()
    letters = [x for x in (parse_letter(d) for d in dead_letters(settings)) if x is not None]
    plan = plan_redrive(
        letters, reason, source_kinds(settings), settings, now_ms=wall_ms(), force=force
    )
    sends = [step for step in plan if isinstance(step, Redrive)]
    skips = [step for step in plan if not isinstance(step, Redrive)]
    for skip in skips:
        letter = skip.letter
        where = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
        click.echo(f"skipped {where}: {skip.why}", err=True)
    if not dry_run and sends:
        with EventProducer(settings) as producer:
            for step in sends:
                assert step.letter.original is not None
                producer.send_raw(step.topic, step.key, step.letter.original)
    verb = "would re-send" if dry_run else "re-sent"
    click.echo(f"{verb} {len(sends)} of {len(plan)} dead letter(s) with reason {reason}")
    if skips:
        raise SystemExit(1)
