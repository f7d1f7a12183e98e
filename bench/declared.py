"""Declared interests: do they help a new user's first list, and does behaviour take over?

    .venv/bin/python bench/declared.py [--users-per-group 1000] [--seed 11]

In-process, through the production engine and learning path (``pipeline.learning``): a
simulated world is warmed up with 40,000 events, then three groups of brand-new users act
for their first 10 events, test-then-learn (before each positive event: is the item in the
user's current top 10?):

* ``matching``: declared their two favourite latent categories before the first event;
* ``none``: declared nothing (the default: no wizard);
* ``wrong``: declared the two categories they like least.

Prints hit rate over the first 10 events per group, per event index, and the event index
from which the ``wrong`` group is within 10 % of ``none`` (recovery). Writes
``bench/results/declared.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.catalog import item_info  # noqa: E402
from pipeline.controls import apply_control  # noqa: E402
from pipeline.features import FeatureParams, UserState  # noqa: E402
from pipeline.learning import event_signal, learn_event  # noqa: E402
from pipeline.recommender import Engine  # noqa: E402
from pipeline.simulator import World  # noqa: E402
from schemas.control import Control  # noqa: E402
from schemas.events import Event, Item  # noqa: E402

GROUPS = ("matching", "none", "wrong")
FIRST_EVENTS = 10
PARAMS = FeatureParams(half_life_seconds=3 * 86_400.0, history_size=50, excluded_size=2_000,
                       dedupe_size=100)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users-per-group", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "declared.json")
    args = parser.parse_args()
    started = time.perf_counter()

    n_new = 3 * args.users_per_group
    world = World(seed=args.seed, n_users=2_000 + n_new, n_items=400)
    engine = Engine()
    for item in world.items():
        engine.upsert_item(item_info(Item.model_validate(item)))
    users: dict[str, UserState] = {}

    def learn(doc: dict[str, Any]) -> tuple[bool, Event]:
        event = Event.model_validate(doc)
        state = users.setdefault(event.user_id, UserState(event.user_id))
        signal = event_signal(engine, event, threshold=0.6)
        engine.apply(learn_event(engine, state, event, signal, PARAMS))
        state.mark_clean()
        return signal.positive, event

    ts = 1_735_689_600_000
    warm = 40_000
    for n in range(warm):
        ts += 1_000
        doc = world.next_event(ts)
        if int(doc["user_id"][1:]) < 2_000:  # keep the test users brand-new
            learn(doc)
        if n % 500 == 0:
            engine.refresh_indexes(ts)
    engine.refresh_indexes(ts)

    hits = {g: [0] * FIRST_EVENTS for g in GROUPS}
    positives = {g: [0] * FIRST_EVENTS for g in GROUPS}
    for k in range(n_new):
        group = GROUPS[k % 3]
        user_id = f"u{2_000 + k}"
        state = users.setdefault(user_id, UserState(user_id))
        taste = sorted(world.taste(user_id).items(), key=lambda kv: kv[1], reverse=True)
        declared = {"matching": [c for c, _ in taste[:2]], "wrong": [c for c, _ in taste[-2:]]}
        if group in declared:
            control = Control(control_id=f"c{k}", type="declare_interests", user_id=user_id,
                              ts=ts, categories=tuple(declared[group]))  # fmt: skip
            apply_control(state.controls, control, n_events=state.n_events)
        # A simulated choice is a click followed by its watch: the list is checked at the
        # click (the moment of choosing), and counts when the watch turns out positive.
        chosen: dict[str, tuple[int, bool]] = {}
        for index, doc in enumerate(world.session(user_id, FIRST_EVENTS, ts)):
            if index >= FIRST_EVENTS and doc["type"] != "watch":
                break  # past the first 10 events, only the last choice's watch is read
            event = Event.model_validate(doc)
            if event.type == "click":
                listed = [r.item_id for r in engine.recommend(state, event.ts, n=10)]
                chosen[event.item_id] = (index, event.item_id in listed)
            positive, _ = learn(doc)
            if positive and event.item_id in chosen:
                at, hit = chosen.pop(event.item_id)
                positives[group][at] += 1
                hits[group][at] += hit

    def rate(h: list[int], p: list[int]) -> float:
        return sum(h) / max(1, sum(p))

    overall = {g: rate(hits[g], positives[g]) for g in GROUPS}
    curve = {g: [hits[g][i] / max(1, positives[g][i]) for i in range(FIRST_EVENTS)] for g in GROUPS}
    recovered = next(
        (
            i + 1
            for i in range(FIRST_EVENTS)
            if rate(hits["wrong"][i:], positives["wrong"][i:])
            >= 0.9 * rate(hits["none"][i:], positives["none"][i:])
        ),
        None,
    )
    print(
        f"declared interests: {args.users_per_group} new users per group, "
        f"first {FIRST_EVENTS} events"
    )
    print(f"{'group':<10} {'HR@10':>7} {'positives':>10}   per event index 1..10")
    for g in GROUPS:
        per = " ".join(f"{x:.2f}" for x in curve[g])
        print(f"{g:<10} {overall[g]:>7.3f} {sum(positives[g]):>10}   {per}")
    print(f"matching vs none: {overall['matching'] / max(overall['none'], 1e-9):.2f}x")
    print(f"wrong declarations recover (within 10% of none from then on) at event {recovered}")
    result = {
        "benchmark": "declared",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "timestamp": int(time.time()),
        "users_per_group": args.users_per_group,
        "hit_rate": overall,
        "per_event": curve,
        "recovered_at_event": recovered,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
