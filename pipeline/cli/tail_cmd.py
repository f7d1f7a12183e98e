"""``recloop tail TOPIC``: follow a topic as decoded JSON lines (Ctrl-C stops it cleanly)."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import click

from pipeline.config import Settings


@click.command()
@click.argument("topic")
@click.option("--user", "user_id", default=None, help="Only records about this user id.")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record, not the end.")
@click.option(
    "--max", "max_records", type=click.IntRange(min=1), default=None, help="Stop after N records."
)
@click.option("--meta", is_flag=True, help="Wrap each value with topic, partition, offset, key.")
def tail(
    topic: str, user_id: str | None, from_beginning: bool, max_records: int | None, meta: bool
) -> None:
    """Print TOPIC's records as JSON, one per line, as they arrive.

    TOPIC is a name or one of events, items, controls, recommendations, dlq (the configured
    topics). Reads every partition without joining a consumer group, so it never takes
    work from a worker. Values that are not JSON print as {"undecodable_base64": ...}.
    """
    from pipeline.kafka.reader import TopicReader  # the Kafka client loads only here
    from pipeline.kafka.records import about_user, decode_value, render, resolve_topic

    settings = Settings()
    name = resolve_topic(topic, settings)

    # Ctrl-C and SIGTERM only set a flag, read between polls: an exception raised
    # asynchronously could land inside the Kafka client's own callbacks (its logger runs
    # during consume and close), where it can be swallowed and the loop never ends.
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    reader = TopicReader(
        settings, name, start="beginning" if from_beginning else "end", client_id="tail"
    )
    shown = 0
    out = sys.stdout.buffer
    try:
        while not stopping and (max_records is None or shown < max_records):
            for record in reader.poll(0.5):
                if user_id is not None and not about_user(
                    record.key, decode_value(record.value), user_id
                ):
                    continue
                out.write(render(record, meta=meta) + b"\n")
                shown += 1
                if shown == max_records:
                    break
            out.flush()
    except BrokenPipeError:
        pass
    finally:
        reader.close()
    click.echo(f"tail: {shown} record(s) from {name}", err=True)
