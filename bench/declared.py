"""Declared interests: do they help a new user's first list, and does behaviour take over?

    .venv/bin/python bench/declared.py [--users 3000] [--seed 11]

In-process, through the production engine and learning path (``pipeline.model.learn``): a
simulated world is warmed up with 40,000 events, then brand-new users act for their first 10
events, test-then-learn (at each click: is the clicked item in the user's current top 10?
It counts as a hit when the watch that follows is positive).

The design is *paired*: every new user is followed in three copies that see the same events
and differ only in what they declared before the first event:

* ``matching``: their two favourite latent categories;
* ``none``: nothing (the default: no wizard);
* ``wrong``: the two categories they like least.

So the differences between groups come from the declarations alone, not from which users or
sessions a group happened to draw. Co-occurrence and item statistics learn each event once
(the river ranker, whose ranking weight is 0 by default, trains on each copy). Prints hit rate
over the first 10 events per group with the paired difference to ``none`` (95 % CI over
users), the hit rate per event index, and the event index from which ``wrong`` stays within
10 % of ``none`` (recovery). Writes ``bench/results/declared.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.results import write_json  # noqa: E402  (bench/ is on sys.path)

from pipeline.config import Settings  # noqa: E402
from pipeline.features.controls import apply_control  # noqa: E402
from pipeline.features.state import UserState  # noqa: E402
from pipeline.features.update import FeatureParams  # noqa: E402
from pipeline.lists.params import ListParams  # noqa: E402
from pipeline.lists.recommend import Recommender  # noqa: E402
from pipeline.model.catalog import item_info  # noqa: E402
from pipeline.model.learn import event_signal, learn_event  # noqa: E402
from pipeline.model.models import SharedModels  # noqa: E402
from pipeline.tooling.simulator import World  # noqa: E402
from schemas.control import Control  # noqa: E402
from schemas.events import Event, Item  # noqa: E402

GROUPS = ("matching", "none", "wrong")
FIRST_EVENTS = 10
PARAMS = FeatureParams(
    half_life_seconds=3 * 86_400.0,
    history_size=Settings().history_size,
    excluded_size=2_000,
    dedupe_size=100,
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--declared-weight", type=float, default=ListParams().declared_weight)
    parser.add_argument("--declared-halfway", type=float, default=ListParams().declared_halfway)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "declared.json")
    args = parser.parse_args()
    started = time.perf_counter()

    world = World(seed=args.seed, n_users=2_000 + args.users, n_items=400)
    models = SharedModels()
    engine = Recommender(
        models,
        ListParams(declared_weight=args.declared_weight, declared_halfway=args.declared_halfway),
    )
    for item in world.items():
        models.upsert_item(item_info(Item.model_validate(item)))
    users: dict[str, UserState] = {}

    def learn(doc: dict[str, Any]) -> None:
        event = Event.model_validate(doc)
        state = users.setdefault(event.user_id, UserState(event.user_id))
        signal = event_signal(models, event, threshold=0.6)
        record, example, _ = learn_event(models, state, event, signal, PARAMS)
        models.apply(record)
        models.learn_ranker([example] if example else [])
        state.mark_clean()

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
    positives = [0] * FIRST_EVENTS
    # (hits, positives) per user, for the paired CI
    per_user: dict[str, list[tuple[int, int]]] = {g: [] for g in GROUPS}
    declared_share: list[float] = []
    for k in range(args.users):
        user_id = f"u{2_000 + k}"
        taste = sorted(world.taste(user_id).items(), key=lambda kv: kv[1], reverse=True)
        declared = {"matching": [c for c, _ in taste[:2]], "wrong": [c for c, _ in taste[-2:]]}
        copies = {g: UserState(user_id) for g in GROUPS}
        for group, categories in declared.items():
            control = Control(control_id=f"c{k}", type="declare_interests", user_id=user_id,
                              ts=ts, categories=tuple(categories))  # fmt: skip
            apply_control(copies[group].controls, control, n_events=0)
        first = engine.recommend(copies["matching"], ts, n=10)
        declared_share.append(
            sum(
                any(
                    c in declared["matching"]
                    for c in models.catalog.categories_of(models.catalog.index_of(r.item_id))
                )
                for r in first
            )
            / max(1, len(first))
        )
        # A simulated choice is a click followed by its watch: the list is checked at the
        # click (the moment of choosing), and counts when the watch turns out positive.
        chosen: dict[str, tuple[int, dict[str, bool]]] = {}
        user_hits = dict.fromkeys(GROUPS, 0)
        user_positives = 0
        for index, doc in enumerate(world.session(user_id, FIRST_EVENTS, ts)):
            if index >= FIRST_EVENTS and doc["type"] != "watch":
                break  # past the first 10 events, only the last choice's watch is read
            event = Event.model_validate(doc)
            if event.type == "click":
                chosen[event.item_id] = (index, {
                    g: event.item_id in {r.item_id for r in engine.recommend(st, event.ts, n=10)}
                    for g, st in copies.items()
                })  # fmt: skip
            signal = event_signal(models, event, threshold=0.6)
            for group, state in copies.items():
                record, example, _ = learn_event(models, state, event, signal, PARAMS)
                models.learn_ranker([example] if example else [])  # on each copy
                state.mark_clean()
                if group == "none":  # co-occurrence and item statistics learn it once
                    models.apply(record)
            if signal.positive and event.item_id in chosen:
                at, listed = chosen.pop(event.item_id)
                positives[at] += 1
                user_positives += 1
                for group in GROUPS:
                    hits[group][at] += listed[group]
                    user_hits[group] += listed[group]
        for group in GROUPS:
            per_user[group].append((user_hits[group], user_positives))

    total = max(1, sum(positives))
    overall = {g: sum(hits[g]) / total for g in GROUPS}
    curve = {g: [hits[g][i] / max(1, positives[i]) for i in range(FIRST_EVENTS)] for g in GROUPS}
    diff = {g: _paired_ci(per_user[g], per_user["none"]) for g in ("matching", "wrong")}
    recovered = next(
        (
            i + 1
            for i in range(FIRST_EVENTS)
            if all(curve["wrong"][j] >= 0.9 * curve["none"][j] for j in range(i, FIRST_EVENTS))
        ),
        None,
    )
    print(
        f"declared interests: {args.users} new users, each in all three groups (paired), "
        f"first {FIRST_EVENTS} events, {total} positive choices"
    )
    print(f"{'group':<10} {'HR@10':>7} {'vs none (95% CI)':>26}   per event index 1..10")
    for g in GROUPS:
        per = " ".join(f"{x:.2f}" for x in curve[g])
        vs = "" if g == "none" else "{:+.3f} [{:+.3f}, {:+.3f}]".format(*diff[g])
        print(f"{g:<10} {overall[g]:>7.3f} {vs:>26}   {per}")
    print(f"declared categories' share of a matching user's first list: "
          f"{sum(declared_share) / max(1, len(declared_share)):.2f}")  # fmt: skip
    print(f"matching vs none: {overall['matching'] / max(overall['none'], 1e-9):.2f}x")
    print(f"wrong declarations recover (within 10% of none at every later event) at event "
          f"{recovered}")  # fmt: skip
    result = {
        "benchmark": "declared",
        "timestamp": int(time.time()),
        "users": args.users,
        "positive_choices": total,
        "declared_weight": args.declared_weight,
        "declared_halfway": args.declared_halfway,
        "hit_rate": overall,
        "declared_share_of_first_list": sum(declared_share) / max(1, len(declared_share)),
        "paired_difference_vs_none": {g: list(d) for g, d in diff.items()},
        "per_event": curve,
        "recovered_at_event": recovered,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.out, result)  # with the machine facts (harness.results)
    print(f"wrote {args.out}")
    return 0


def _paired_ci(
    group: list[tuple[int, int]], base: list[tuple[int, int]]
) -> tuple[float, float, float]:
    """Difference in hit rate (ratio of sums) with a 95 % CI by the delta method over users.

    Users are the independent units; each contributes its hits under both conditions and
    its number of positive choices (the same in both, the copies see the same events).
    """
    d = np.array([h - b for (h, _), (b, _) in zip(group, base, strict=True)], dtype=float)
    n = np.array([p for _, p in base], dtype=float)
    rate = d.sum() / max(1.0, n.sum())
    # ratio estimator: residuals d_i - rate * n_i, variance summed over users
    resid = d - rate * n
    se = math.sqrt(float((resid**2).sum())) / max(1.0, n.sum())
    return float(rate), float(rate - 1.96 * se), float(rate + 1.96 * se)


if __name__ == "__main__":
    raise SystemExit(main())
