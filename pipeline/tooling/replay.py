"""Prequential (test-then-learn) replay of an event log through the production engine.

For each positive event (a watch at or past ``completion_threshold``), *before* learning
from it, we ask the engine for the user's top ``k`` among items the user has not interacted
with, and record a hit when the event's item is there (HitRate@K; NDCG@K =
``1 / log2(rank + 2)`` on a hit, rank 0-based). Then every model learns from the event,
whatever it was. The baselines are scored on the same positives: most-popular (interaction
counts so far) and recently-popular (decayed counts, half-life ``recent_half_life``).

The models, the recommender, the learning step and the signal mapping are the ones the
workers run (``SharedModels``, ``Recommender``, ``learn_batch``); only the I/O (Kafka, Redis)
is left out.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from pipeline.features.decay import growth_exponent
from pipeline.features.state import UserState
from pipeline.features.update import FeatureParams
from pipeline.lists.recommend import ListParams, Recommender
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
    """Hit counts of one ranker over the replay."""

    hits: int = 0
    ndcg: float = 0.0
    recommended: set[str] = field(default_factory=set)

    def add(self, ranked: list[str], target: str) -> None:
        """Score one positive event against a ranked list."""
        self.recommended.update(ranked)
        if target in ranked:
            self.hits += 1
            self.ndcg += 1.0 / math.log2(ranked.index(target) + 2)

    def summary(self, positives: int, catalog_size: int) -> dict[str, float]:
        """HitRate@K, NDCG@K and catalogue coverage (share of items ever recommended)."""
        n = positives or 1
        return {
            "hit_rate": self.hits / n,
            "ndcg": self.ndcg / n,
            "coverage": len(self.recommended) / (catalog_size or 1),
        }


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    """What the replay measures and with which knobs."""

    k: int = 10
    completion_threshold: float = 0.6
    half_life_seconds: float = 3 * 86_400.0
    recent_half_life_seconds: float = 86_400.0
    history_size: int = 50
    excluded_size: int = 5_000
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
    return model, lists


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


def replay(
    events: Iterable[Event], items: Iterable[Item], config: ReplayConfig
) -> dict[str, object]:
    """Run the prequential protocol; returns the JSON-able report."""
    models = SharedModels(config.model)
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
    started = time.perf_counter()
    for event in events:
        n_events += 1
        state = users.get(event.user_id)
        if state is None:
            state = users[event.user_id] = UserState(event.user_id)
        idx = models.catalog.ensure(event.item_id)
        signal = event_signal(models, event, threshold=config.completion_threshold)
        if n_events % INDEX_EVERY == 1:
            recommender.refresh_indexes(event.ts)
        if signal.positive:
            positives += 1
            ranked = recommender.recommend(state, event.ts, n=config.k)
            model.add([r.item_id for r in ranked], event.item_id)
            ids = models.catalog.ids
            popular.add(_top_unseen(counts, ids, state.excluded, config.k), event.item_id)
            recent.add(_top_unseen(decayed, ids, state.excluded, config.k), event.item_id)
        learning = learn_batch(
            models,
            {event.user_id: state},
            [event],
            params=params,
            threshold=config.completion_threshold,
        )
        apply_learning(models, learning)
        state.mark_clean()
        counts, decayed = fit(counts, idx + 1), fit(decayed, idx + 1)
        if landmark is None:
            landmark = event.ts
        counts[idx] += 1.0
        decayed[idx] += 2.0 ** growth_exponent(event.ts, landmark, config.recent_half_life_seconds)
    seconds = time.perf_counter() - started
    size = len(models.catalog)
    return {
        "k": config.k,
        "events": n_events,
        "positives": positives,
        "seconds": round(seconds, 3),
        "events_per_second": round(n_events / seconds, 1) if seconds else 0.0,
        "model": model.summary(positives, size),
        "most_popular": popular.summary(positives, size),
        "recent_popular": recent.summary(positives, size),
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
        f"{'x most-pop':>11}",
    ]
    base = report["most_popular"]["hit_rate"] or 1.0
    for name in ("model", "most_popular", "recent_popular"):
        m = report[name]
        lines.append(
            f"{name:<16} {m['hit_rate']:>8.4f} {m['ndcg']:>9.4f} {m['coverage']:>9.3f} "
            f"{m['hit_rate'] / base:>11.2f}"
        )
    return "\n".join(lines)
