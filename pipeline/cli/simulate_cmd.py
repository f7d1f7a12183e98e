"""``recloop simulate``: publish a synthetic world's catalogue and paced events to Kafka.

The behaviour lives in ``pipeline.tooling.simulator`` (what happens) and ``events_due`` (when);
this module only wires them to a producer, a clock and the signals that stop a run.
"""

from __future__ import annotations

import dataclasses
import secrets
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import click
import orjson

from pipeline.config import Settings
from pipeline.tooling.churn import CatalogChange, Churn
from pipeline.tooling.new_item_tally import Arm, Tally, arm_sums, is_new_in
from pipeline.tooling.simulator import World, events_due

ProgressFn = Callable[[int, float, float], None]
ListRead = Callable[[str, Arm | None, Sequence[str]], None]


class EventSink(Protocol):
    """What the loop needs from a producer (``pipeline.kafka.producer.EventProducer`` fits)."""

    def send_event(self, event: Mapping[str, Any]) -> str:
        """Queue one event v1 for sending; returns its event id."""
        ...

    def flush(self) -> None:
        """Block until queued messages are acknowledged."""
        ...


def run_simulation(
    world: World,
    sink: EventSink,
    *,
    rate: float,
    duration: float | None,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    sleep: Callable[[float], object] | None = None,
    progress: ProgressFn | None = None,
    progress_every: float = 5.0,
    tick: float = 0.01,
    recommended: Callable[[str], Sequence[str]] | None = None,
    follow: float = 0.7,
    catalog: Callable[[CatalogChange], object] | None = None,
    on_event: Callable[[Mapping[str, Any]], object] | None = None,
) -> int:
    """Send ``world``'s events at ``rate``/s until ``duration`` elapses or ``stop`` is set.

    Each tick sends the events that are due in one batch (the producer batches them further
    on the wire); sleeping on ``stop`` makes a signal end the run within one tick. Returns
    the number of events sent. ``clock``, ``wall_ms`` and ``sleep`` are injectable so the
    loop is testable without time passing. With ``catalog``, each tick first hands it the
    world's catalogue changes (``World.catalog_changes``); ``on_event`` sees every event
    sent (the new-item tally).
    """
    pause = sleep if sleep is not None else stop.wait
    start = clock()
    sent = reported = 0
    last_report = start
    while not stop.is_set():
        now = clock()
        elapsed = now - start if duration is None else min(now - start, duration)
        due = events_due(elapsed, rate, sent)
        ts = wall_ms()
        if catalog is not None:
            for change in world.catalog_changes(ts):
                catalog(change)
        if due:
            for _ in range(due):
                event = world.next_event(ts, recommended, follow)
                sink.send_event(event)
                if on_event is not None:
                    on_event(event)
            sent += due
        if progress is not None and now - last_report >= progress_every:
            progress(sent, (sent - reported) / (now - last_report), now - start)
            reported, last_report = sent, now
        if duration is not None and elapsed >= duration and due == 0:
            break
        pause(tick)
    sink.flush()
    return sent


def _redis_lists(
    settings: Settings, on_read: ListRead | None = None
) -> Callable[[str], Sequence[str]]:
    """User id -> item ids of the user's current list, read from the recs key.

    ``on_read`` sees each list read with its experiment arm (the new-item tally).
    """
    import orjson

    from pipeline.stores.client import sync_redis
    from pipeline.stores.keys import RedisKeys

    client = sync_redis(settings.redis_url, mode=settings.redis_cluster)
    keys = RedisKeys(settings.redis_namespace)

    def lookup(user_id: str) -> Sequence[str]:
        raw = client.get(keys.recs(user_id))
        if raw is None:
            return ()
        doc = orjson.loads(raw)
        items = [entry["item_id"] for entry in doc["items"]]
        if on_read is not None:
            arm = (doc["experiment"], doc["variant"]) if doc.get("variant") else None
            on_read(user_id, arm, items)
        return items

    return lookup


def _print_progress(sent: int, rate: float, elapsed: float) -> None:
    click.echo(f"simulate: sent={sent} rate={rate:.1f}/s elapsed={elapsed:.0f}s")


@click.command()
@click.option(
    "--users",
    type=click.IntRange(min=0),
    default=1_000,
    show_default=True,
    help="Users known at the start (new users keep arriving).",
)
@click.option(
    "--items",
    "n_items",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Catalogue size.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=100.0,
    show_default=True,
    help="Events per second.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds to run [default: until Ctrl-C or SIGTERM].",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of the world [default: random, printed so the run can be repeated].",
)
@click.option("--no-items", is_flag=True, help="Do not publish the catalogue first.")
@click.option(
    "--closed-loop",
    is_flag=True,
    help="Users read their current list from Redis and mostly choose from it.",
)
@click.option(
    "--follow",
    type=click.FloatRange(0, 1),
    default=0.7,
    show_default=True,
    help="Closed loop: share of choices made from the list (the rest is browsing).",
)
@click.option(
    "--away-seconds",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Users stay away this long on average after a session, less after a session that "
    "matched their taste (0: never away). Gives return rates a ground truth.",
)
@click.option(
    "--releases-per-minute",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="New items released during the run (most by creators of the catalogue).",
)
@click.option(
    "--live-channels",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Live channels that go on and off air (available: true / false).",
)
@click.option(
    "--on-air-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="Mean time a live channel stays on air (and, the same, off air).",
)
@click.option(
    "--retirements-per-minute",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Oldest items withdrawn by a tombstone.",
)
@click.option(
    "--tally",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Closed loop: write the new-item ground truth per experiment arm here (JSON).",
)
@click.option(
    "--new-window-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=86_400.0,
    show_default=True,
    help="With --tally: how long an item counts as new.",
)
@click.option(
    "--bootstrap",
    default=None,
    envvar="RECLOOP_KAFKA_BOOTSTRAP",
    show_envvar=True,
    help="Kafka bootstrap servers [default: 127.0.0.1:9092].",
)
def simulate(
    users: int,
    n_items: int,
    rate: float,
    duration: float | None,
    seed: int | None,
    no_items: bool,
    closed_loop: bool,
    follow: float,
    away_seconds: float,
    releases_per_minute: float,
    live_channels: int,
    on_air_seconds: float,
    retirements_per_minute: float,
    tally: Path | None,
    new_window_seconds: float,
    bootstrap: str | None,
) -> None:
    """Produce synthetic events (and the item catalogue) to Kafka at a steady rate."""
    from pipeline.kafka.producer import EventProducer  # the Kafka client loads only here
    from pipeline.kafka.topics import ensure_topics

    settings = Settings()
    if bootstrap is not None:
        settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
    if seed is None:
        seed = secrets.randbelow(2**31)
    churn = Churn(
        releases_per_minute=releases_per_minute,
        live_channels=live_channels,
        on_air_seconds=on_air_seconds,
        off_air_seconds=on_air_seconds,
        retirements_per_minute=retirements_per_minute,
        max_items=max(n_items, 1) * 4,
    )
    world = World(seed=seed, n_users=users, n_items=n_items, away_seconds=away_seconds, churn=churn)
    counts = (
        Tally(
            is_new_in(world.available_since, int(new_window_seconds * 1000)),
            window_ms=int(new_window_seconds * 1000),
            completion_threshold=settings.completion_threshold,
        )
        if tally is not None and closed_loop
        else None
    )
    click.echo(
        f"simulate: seed={seed} users={users} items={n_items} rate={rate}/s "
        f"bootstrap={settings.kafka_bootstrap} topic={settings.topic_events}"
    )
    ensure_topics(settings)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # a second Ctrl-C aborts even a stuck flush
            raise KeyboardInterrupt
        stop.set()

    on_read: ListRead | None = None
    if counts is not None:

        def on_read(user: str, arm: Arm | None, items: Sequence[str]) -> None:
            counts.shown(user, arm, items, time.time_ns() // 1_000_000)

    recommended = _redis_lists(settings, on_read) if closed_loop else None
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with EventProducer(settings) as producer:

            def send_item(item: dict[str, Any]) -> None:
                del item["schema_version"]  # the producer stamps the version it sends
                producer.item(item.pop("item_id"), item.pop("categories"), **item)

            def send_change(change: CatalogChange) -> None:
                if not change.sends:
                    return
                message = change.message()
                if message is None:
                    producer.remove_item(change.item_id)
                else:
                    send_item(message)

            if not no_items:
                for item in world.items():
                    send_item(item)
                producer.flush()  # the catalogue lands before the first event refers to it
                click.echo(f"simulate: published {n_items} items to {settings.topic_items}")
            started = time.monotonic()
            sent = run_simulation(
                world,
                producer,
                rate=rate,
                duration=duration,
                stop=stop,
                progress=_print_progress,
                recommended=recommended,
                follow=follow,
                catalog=send_change if churn.active else None,
                on_event=counts.event if counts is not None else None,
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    elapsed = time.monotonic() - started
    click.echo(
        f"simulate: done sent={sent} elapsed={elapsed:.1f}s "
        f"rate={sent / max(elapsed, 1e-9):.1f}/s users_seen={world.known_users}"
    )
    if counts is not None and tally is not None:
        tally.write_bytes(orjson.dumps(tally_doc(counts), option=orjson.OPT_INDENT_2))
        click.echo(f"simulate: new-item tally of {len(counts.users)} users written to {tally}")


def tally_doc(counts: Tally) -> dict[str, Any]:
    """The tally as JSON: per arm, users and each metric's sums (``experiment_stats.Sums``)."""
    return {
        "window_ms": counts.window_ms,
        "overflow_users": counts.overflow,
        "arms": [
            {
                "experiment": arm[0],
                "variant": arm[1],
                "users": int(next(iter(sums.values())).n),
                "sums": {metric: dataclasses.asdict(s) for metric, s in sums.items()},
            }
            for arm, sums in sorted(arm_sums(counts).items())
        ],
    }
