"""The events benchmarks send: pre-loaded backlogs, paced simulator traffic, per-user traffic.

Every event's ``ts`` is the wall-clock time it was built, just before it is sent, so the
freshness of a list (``receive time - trigger_ts``) counts every hop after the producer.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from pipeline.config import Settings
from pipeline.kafka.producer import kafka_producer
from pipeline.tooling.simulator import World, events_due

from .kafka import fast_produce, publish_catalogue
from .listeners import now_ms
from .output import log

TICK_SECONDS = 0.005
"""The paced producer sends what is due every 5 ms: each event still gets its own send time
as ``ts``, and a 2-core machine keeps the CPU a 1 ms loop would burn for the worker."""


def preload(settings: Settings, world: World, n: int) -> dict[str, Any]:
    """Publish the catalogue, then ``n`` simulator events, before any consumer runs."""
    publish_catalogue(settings, world.items())
    users: set[str] = set()

    def records() -> Iterator[tuple[bytes, bytes]]:
        for _ in range(n):
            event = world.next_event(now_ms())
            users.add(event["user_id"])
            yield event["user_id"].encode(), orjson.dumps(event)

    t0 = time.monotonic()
    fast_produce(settings, settings.topic_events, records())
    seconds = time.monotonic() - t0
    return {"events": n, "distinct_users": len(users), "seconds": seconds, "rate": n / seconds}


def paced_produce(
    settings: Settings,
    world: World,
    *,
    rate: float,
    phases: list[tuple[str, float]],
    on_phase: Callable[[str], None] = lambda _: None,
    on_event: Callable[[str, dict[str, Any]], None] = lambda _phase, _event: None,
) -> dict[str, Any]:
    """Send simulator events paced at ``rate``/s through ``phases`` of (name, seconds).

    ``on_phase(name)`` runs as a phase starts, ``on_event(phase, event)`` after each send.
    Returns per phase: events sent, seconds, and its start and end (wall ms and monotonic).
    """
    producer = kafka_producer(settings)
    topic = settings.topic_events
    out: dict[str, Any] = {}
    try:
        for phase, seconds in phases:
            if seconds <= 0:
                continue
            on_phase(phase)
            sent = 0
            start, start_ms = time.monotonic(), now_ms()
            end = start + seconds
            while (t := time.monotonic()) < end:
                for _ in range(events_due(t - start, rate, sent)):
                    event = world.next_event(now_ms())
                    producer.produce(topic, orjson.dumps(event), event["user_id"].encode())
                    sent += 1
                    on_event(phase, event)
                producer.poll(TICK_SECONDS)  # serves acknowledgements while it waits
            elapsed = time.monotonic() - start
            out[phase] = {
                "sent": sent,
                "seconds": elapsed,
                "start_ms": start_ms,
                "end_ms": now_ms(),
                "start_mono": start,
                "end_mono": time.monotonic(),
            }
            log(f"{phase}: sent {sent:,} events in {elapsed:.1f} s ({sent / elapsed:,.0f}/s)")
    finally:
        left = producer.flush(30)
    if left:
        raise RuntimeError(f"{left} events unacknowledged after 30 s")
    return out


class UserTraffic:
    """2-3 plausible events for each of the simulator's users, one user after the other.

    The simulator's own traffic is skewed toward heavy users and would need millions of
    events to touch 100,000 distinct users; this touches each user once.
    """

    def __init__(self, world: World, seed: int) -> None:
        self.world = world
        self.rng = random.Random(seed)
        self.by_category: dict[str, tuple[list[str], list[float]]] = defaultdict(lambda: ([], []))
        for item in world.items():
            sim = world.item(item["item_id"])
            for category in sim.categories:
                ids, weights = self.by_category[category]
                ids.append(sim.item_id)
                weights.append(sim.popularity)

    def events(self, user_index: int, n: int) -> Iterator[dict[str, Any]]:
        """Click an item of a favourite category, react to it (watch or skip), click again..."""
        user = self.world.user(f"u{user_index}")
        rng = self.rng
        context = {
            "device": user.device,
            "locale": user.locale,
            "surface": "home",
            "position": rng.randrange(10),
        }
        item = None
        for k in range(n):
            if k % 2 == 0 or item is None:
                category = rng.choices(list(user.taste), weights=list(user.taste.values()))[0]
                ids, weights = self.by_category.get(category) or next(
                    iter(self.by_category.values())
                )
                item = self.world.item(rng.choices(ids, weights=weights)[0])
                yield self._event(
                    "click", user.user_id, item.item_id, item.duration_seconds, context
                )
                continue
            interest = self.world.interest(user.user_id, item.item_id)
            if rng.random() < 0.8 - 0.7 * interest:
                ev = self._event("skip", user.user_id, item.item_id, item.duration_seconds, context)
                ev["watch_seconds"] = round(
                    rng.uniform(1.0, min(15.0, 0.1 * item.duration_seconds)), 1
                )
            else:
                ev = self._event(
                    "watch", user.user_id, item.item_id, item.duration_seconds, context
                )
                completion = rng.betavariate(1 + 7 * interest, 1 + 7 * (1 - interest))
                ev["watch_seconds"] = round(completion * item.duration_seconds, 1)
            yield ev

    def _event(
        self, kind: str, user_id: str, item_id: str, duration: float, context: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "event_id": f"{self.rng.getrandbits(128):032x}",
            "type": kind,
            "user_id": user_id,
            "item_id": item_id,
            "ts": now_ms(),
            "duration_seconds": duration,
            "context": context,
        }
