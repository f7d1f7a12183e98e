"""Prequential (test-then-learn) replay of an event log through the production engine.

For each positive event (a watch at or past ``completion_threshold``), *before* learning
from it, we ask the engine for the user's top ``k`` among items the user has not interacted
with, and record a hit when the event's item is there (HitRate@K; NDCG@K =
``1 / log2(rank + 2)`` on a hit, rank 0-based). Then every model learns from the event,
whatever it was. The baselines are scored on the same positives: most-popular (how many
users interacted with each item so far: one count per user-item interaction, not per event,
so a 3-star rating converted to a click plus a watch counts once; the usual definition) and
recently-popular (the same counts decayed with half-life ``recent_half_life``).

The models, the recommender, the learning step and the signal mapping are the ones the
workers run (``SharedModels``, ``Recommender``, ``learn_batch``); only the I/O (Kafka, Redis)
is left out.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from pipeline.events.signals import signal_for
from pipeline.features.decay import growth_exponent, rescale_needed
from pipeline.features.state import UserState
from pipeline.features.update import FeatureParams
from pipeline.lists.experiments import reads_like_ranker
from pipeline.lists.params import ListParams
from pipeline.lists.recommend import Recommender
from pipeline.model.arrays import FloatArray, fit
from pipeline.model.catalog import item_info
from pipeline.model.learn import apply_learning, event_signal, learn_batch
from pipeline.model.models import ModelParams, SharedModels
from schemas.events import Event, Item
from schemas.validation import Rejected, parse_event, parse_item

INDEX_EVERY = 200  # events between trending/fresh index rebuilds (workers: every 2 s)
_MAX_BYTES = 1 << 20


@dataclass(slots=True)
class Metrics:
    """Hit counts of one ranker over the replay, overall and per half."""

    hits: int = 0
    ndcg: float = 0.0
    recommended: set[str] = field(default_factory=set)
    half_hits: list[int] = field(default_factory=lambda: [0, 0])
    half_ndcg: list[float] = field(default_factory=lambda: [0.0, 0.0])

    def add(self, ranked: list[str], target: str, half: int = 0) -> None:
        """Score one positive event (of half 0 or 1) against a ranked list."""
        self.recommended.update(ranked)
        if target in ranked:
            gain = 1.0 / math.log2(ranked.index(target) + 2)
            self.hits += 1
            self.ndcg += gain
            self.half_hits[half] += 1
            self.half_ndcg[half] += gain

    def summary(
        self, positives: int, catalog_size: int, halves: tuple[int, int] = (0, 0)
    ) -> dict[str, float]:
        """HitRate@K, NDCG@K, catalogue coverage (share of items ever recommended), halves."""
        n = positives or 1
        return {
            "hit_rate": self.hits / n,
            "ndcg": self.ndcg / n,
            "coverage": len(self.recommended) / (catalog_size or 1),
            "hit_rate_1st_half": self.half_hits[0] / (halves[0] or 1),
            "hit_rate_2nd_half": self.half_hits[1] / (halves[1] or 1),
            "ndcg_1st_half": self.half_ndcg[0] / (halves[0] or 1),
            "ndcg_2nd_half": self.half_ndcg[1] / (halves[1] or 1),
        }


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    """What the replay measures and with which knobs."""

    k: int = 10
    completion_threshold: float = 0.6
    half_life_seconds: float = 3 * 86_400.0
    recent_half_life_seconds: float = 86_400.0
    history_size: int = 200  # RECLOOP_HISTORY_SIZE's default
    excluded_size: int = 5_000
    first_half_only: bool = False  # stop at the median positive's time (tuning runs)
    # The replay registers the catalogue once and never re-sends item records, so evicting
    # items "not seen for a year" would drop items a live catalogue still holds (and make
    # quality depend on the data's time scale); eviction by capacity stays.
    evict_stale: bool = False
    model: ModelParams = field(default_factory=ModelParams)
    lists: ListParams = field(default_factory=ListParams)


_MODEL_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelParams))
_LIST_FIELDS = frozenset(f.name for f in dataclasses.fields(ListParams))


def split_params(**overrides: Any) -> tuple[ModelParams, ListParams]:
    """Model and list knobs from one set of overrides (a name both have goes to both).

    >>> model, lists = split_params(context_size=10, category_cap=3)
    >>> model.context_size, lists.context_size, lists.category_cap
    (10, 10, 3)
    """
    unknown = set(overrides) - _MODEL_FIELDS - _LIST_FIELDS
    if unknown:
        msg = f"unknown model or list parameters {sorted(unknown)}"
        raise TypeError(msg)
    model = ModelParams(**{k: v for k, v in overrides.items() if k in _MODEL_FIELDS})
    lists = ListParams(**{k: v for k, v in overrides.items() if k in _LIST_FIELDS})
    return trained_for(model, lists), lists


def trained_for(model: ModelParams, lists: ListParams) -> ModelParams:
    """``model``, training the P(like) ranker if ``lists`` read it (as the worker does).

    >>> trained_for(ModelParams(), ListParams(ranker_power=1.0)).like_ranker
    True
    """
    if reads_like_ranker(lists, ()) and not model.like_ranker:
        return dataclasses.replace(model, like_ranker=True)
    return model


def load_events(path: Path) -> list[Event]:
    """Event v1 lines sorted by ``ts`` (stable: ties keep file order); invalid lines fail."""
    events: list[Event] = []
    now = int(time.time() * 1000)
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parsed = parse_event(line, now_ms=now, max_bytes=_MAX_BYTES, max_future_ms=0)
            if isinstance(parsed, Rejected):
                msg = f"{path}:{lineno}: {parsed.reason}: {parsed.detail}"
                raise ValueError(msg)
            events.append(parsed)
    events.sort(key=lambda e: e.ts)
    return events


def load_items(path: Path) -> list[Item]:
    """Item v1 lines; invalid lines fail loudly (a benchmark must not drop data silently)."""
    items: list[Item] = []
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parsed = parse_item(line, max_bytes=_MAX_BYTES)
            if isinstance(parsed, Rejected):
                msg = f"{path}:{lineno}: {parsed.reason}: {parsed.detail}"
                raise ValueError(msg)
            items.append(parsed)
    return items


def _top_unseen(scores: FloatArray, ids: list[str], excluded: dict[str, int], k: int) -> list[str]:
    """Best ``k`` item ids by ``scores`` that the user has not interacted with."""
    scores = scores[: len(ids)]  # grown arrays are padded past the catalogue (no --items)
    depth = min(scores.shape[0], k + len(excluded))
    top = (
        np.argpartition(-scores, depth - 1)[:depth] if depth < scores.shape[0] else np.arange(depth)
    )
    order = top[np.lexsort((top, -scores[top]))]  # by score, ties by catalogue order
    out: list[str] = []
    for idx in order:
        item_id = ids[int(idx)]
        if item_id not in excluded:
            out.append(item_id)
            if len(out) == k:
                break
    return out


def median_positive_ts(events: Iterable[Event], items: Iterable[Item], threshold: float) -> int:
    """Time of the median positive: positives before it are the 1st half, the rest the 2nd."""
    durations = {item.item_id: item.duration_seconds for item in items}
    times = sorted(
        e.ts
        for e in events
        if signal_for(
            e.type,
            e.watch_seconds,
            e.duration_seconds or durations.get(e.item_id),
            threshold=threshold,
        ).positive
    )
    return times[len(times) // 2] if times else 0


def replay(
    events: Iterable[Event],
    items: Sequence[Item],
    config: ReplayConfig,
    *,
    median_ts: int | None = None,
) -> dict[str, object]:
    """Run the prequential protocol; returns the JSON-able report.

    Every metric is also given per half: the positives before / after the median positive's
    time. Tune on the first half (``first_half_only`` stops the replay there), report the
    second. ``median_ts`` is computed from ``events`` when not given (pass it when ``events``
    is a one-pass iterable such as a progress bar).
    """
    if median_ts is None:
        events = list(events)
        median_ts = median_positive_ts(events, items, config.completion_threshold)
    model_params = trained_for(config.model, config.lists)
    if not config.evict_stale:
        model_params = dataclasses.replace(model_params, catalog_evict_after_seconds=0.0)
    models = SharedModels(model_params)
    recommender = Recommender(models, config.lists)
    for item in items:
        models.upsert_item(item_info(item))
    params = FeatureParams(
        half_life_seconds=config.half_life_seconds,
        history_size=config.history_size,
        excluded_size=config.excluded_size,
        dedupe_size=10,
    )
    users: dict[str, UserState] = {}
    model, popular, recent = Metrics(), Metrics(), Metrics()
    counts = np.zeros(len(models.catalog))
    decayed = np.zeros(len(models.catalog))
    landmark: int | None = None
    n_events = positives = 0
    halves = [0, 0]
    started = time.perf_counter()
    for event in events:
        if config.first_half_only and event.ts >= median_ts:
            break
        n_events += 1
        state = users.get(event.user_id)
        if state is None:
            state = users[event.user_id] = UserState(event.user_id)
        idx = models.catalog.ensure(event.item_id)
        signal = event_signal(models, event, threshold=config.completion_threshold)
        first = event.item_id not in state.excluded  # the baselines count a user-item pair once
        if n_events % INDEX_EVERY == 1:
            recommender.refresh_indexes(event.ts)
        if signal.positive:
            positives += 1
            half = 0 if event.ts < median_ts else 1
            halves[half] += 1
            ranked = recommender.recommend(state, event.ts, n=config.k)
            model.add([r.item_id for r in ranked], event.item_id, half)
            ids = models.catalog.ids
            popular.add(_top_unseen(counts, ids, state.excluded, config.k), event.item_id, half)
            recent.add(_top_unseen(decayed, ids, state.excluded, config.k), event.item_id, half)
        learning = learn_batch(
            models,
            {event.user_id: state},
            [event],
            params=params,
            threshold=config.completion_threshold,
            rerank=recommender.rerank_pairs,
        )
        apply_learning(models, learning)
        state.mark_clean()
        counts, decayed = fit(counts, idx + 1), fit(decayed, idx + 1)
        if not first:
            continue
        if landmark is None:
            landmark = event.ts
        exponent = growth_exponent(event.ts, landmark, config.recent_half_life_seconds)
        if rescale_needed(exponent):  # rebase before 2 ** exponent overflows (years of data)
            decayed *= 2.0**-exponent
            landmark, exponent = event.ts, 0.0
        counts[idx] += 1.0
        decayed[idx] += 2.0**exponent
    seconds = time.perf_counter() - started
    size = len(models.catalog)
    split = (halves[0], halves[1])
    return {
        "k": config.k,
        "events": n_events,
        "positives": positives,
        "positives_by_half": list(split),
        "median_positive_ts": median_ts,
        "seconds": round(seconds, 3),
        "events_per_second": round(n_events / seconds, 1) if seconds else 0.0,
        "model": model.summary(positives, size, split),
        "most_popular": popular.summary(positives, size, split),
        "recent_popular": recent.summary(positives, size, split),
        "reranker_weights": {
            name: round(w, 4) for name, w in models.reranker.snapshot()["weights"].items()
        },
    }


def replay_files(
    events_path: Path, items_path: Path | None, config: ReplayConfig
) -> dict[str, object]:
    """Load the files and replay them."""
    items = load_items(items_path) if items_path else []
    return replay(load_events(events_path), items, config)


def report_json(report: dict[str, object]) -> bytes:
    """The report as indented JSON."""
    return orjson.dumps(report, option=orjson.OPT_INDENT_2)


def format_report(report: dict[str, Any]) -> str:
    """The report as an aligned text table."""
    k = report["k"]
    lines = [
        f"prequential replay: {report['events']} events, {report['positives']} positives, "
        f"{report['seconds']} s ({report['events_per_second']} events/s)",
        f"{'model':<16} {'HR@' + str(k):>8} {'NDCG@' + str(k):>9} {'coverage':>9} "
        f"{'x most-pop':>11} {'HR 1st':>8} {'HR 2nd':>8} {'x MP 2nd':>9}",
    ]
    mp = report["most_popular"]
    base = mp["hit_rate"] or 1.0
    base2 = mp.get("hit_rate_2nd_half") or 1.0
    for name in ("model", "most_popular", "recent_popular"):
        m = report[name]
        lines.append(
            f"{name:<16} {m['hit_rate']:>8.4f} {m['ndcg']:>9.4f} {m['coverage']:>9.3f} "
            f"{m['hit_rate'] / base:>11.2f} {m.get('hit_rate_1st_half', 0.0):>8.4f} "
            f"{m.get('hit_rate_2nd_half', 0.0):>8.4f} "
            f"{m.get('hit_rate_2nd_half', 0.0) / base2:>9.2f}"
        )
    return "\n".join(lines)
