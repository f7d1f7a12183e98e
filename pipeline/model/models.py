"""The shared models one worker holds, and how a learn record updates them.

``SharedModels`` bundles the catalogue, item-item co-occurrence, item statistics and the
river ranker. Learning is split so that several workers can share one model:

* ``record_for`` turns an event plus the user's state *before* the event into a
  ``LearnRecord``: everything the shared models need, with public ids only. Records are
  commutative increments, so any worker can apply any other worker's records in any order.
* ``apply`` folds a record into the models (the worker's own records once its batch is
  durable, the others' when it syncs, see ``pipeline.worker.sharing``).

The ranker is the exception: it learns from the worker's own events (``learn_ranker``) and
is shared through snapshots. Ranking lives in ``pipeline.lists``; it only reads these models.

**Memory is set by the bounds, not by traffic** (``ModelParams``, from the settings
``RECLOOP_CATALOG_MAX_ITEMS`` = N, ``RECLOOP_MODEL_NEIGHBORS`` = K,
``RECLOOP_TRENDING_MAX_SEGMENTS`` = S, ``RECLOOP_TRENDING_ITEMS_PER_SEGMENT`` = M), in bytes::

    catalogue       N x (~70 arrays and dict entry + id, title and creator strings)
    statistics      N x 48 + S x M x ~120 + 61 stages x 200 x ~120
    co-occurrence   N x 26 + arena slots x 8,  entries <= N x K (every row full)
    change logs     3 x 512 KiB
    user-kNN        ~10 x E + ~150 x U + ~130 x I  (U <= RECLOOP_USER_KNN_MAX_USERS users,
                    E <= U x 50 user-items, I <= E items: ``pipeline.model.user_knn``)

With 1M items after 5M events of simulated traffic rows hold ~10 neighbours on average and
the models take ~0.5 GB (``make bench-scale``); the worst case with the defaults (2M items,
every row holding 200 neighbours) is ~7 GB: lower N or K for a tighter ceiling.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter

from pipeline.config import Settings
from pipeline.events.signals import Signal
from pipeline.features.sequence import affinity_of, given_weight, recent_items
from pipeline.features.state import UserState
from pipeline.model.arrays import IntArray
from pipeline.model.catalog import Catalog, ItemInfo
from pipeline.model.cooc import CoocModel
from pipeline.model.item_stats import MAX_SEGMENTS, ItemStats
from pipeline.model.ranker import FEATURES, Ranker
from pipeline.model.record import LearnRecord, trend_segments
from pipeline.model.reranker import Reranker
from pipeline.model.user_knn import UserKnn

_first, _second = itemgetter(0), itemgetter(1)  # of (item, weight) pairs, in C
_SWEEP_EVERY = 1_024  # records between two slices of the catalogue's time-based eviction
# sources (``topic:partition``) whose learned offsets are kept: far more than any deployment's
# partitions, so a bound that is never reached in practice, but a bound
MAX_SOURCES = 65_536


@dataclass(frozen=True, slots=True)
class ModelParams:
    """Knobs of the shared models; defaults are the ones the quality benchmark chose."""

    # the ranker's examples read the user's latest context_size distinct items, as a list
    # does; the learn record teaches co-occurrence with the latest learn_context (the window
    # weighs them by distance, so far items count little but still count): chosen on the
    # first half of ML-100K, see README "Quality"; needs RECLOOP_HISTORY_SIZE >= ~2x it
    context_size: int = 20
    learn_context: int = 100
    recency_decay: float = 0.9
    weak_weight: float = 0.5  # a click or partial watch in the sequence (features.sequence)
    skip_weight: float = 0.3  # a skip as co-exposure in the sequence; 0: ignored
    window_positions: float = 40.0  # co-occurrence window in sequence positions; 0: flat
    dislike_size: int = 10
    neighbors: int = 400
    neighbors_keep: int | None = None  # a full row is pruned to this many (3/4 by default)
    # the co-occurrence arena's bound (MiB, 8 bytes an entry): at it, the lightest entries
    # of the whole table go (pipeline.model.neighbors); ML-100K needs ~5 MiB of it
    neighbor_memory_mb: int = 512
    catalog_max_items: int = 2_000_000
    catalog_evict_after_seconds: float = 365 * 86_400.0
    segment_items: int = 500
    stage_cap: int = 60  # stage popularity: stages 0..cap (the last one: cap and later)
    stage_items: int = 200  # heaviest items kept per stage
    # user-kNN over recent windows (pipeline.model.user_knn), per worker; 0 users: off
    uknn_max_users: int = 200_000
    uknn_window: int = 50
    uknn_neighbours: int = 30
    uknn_positions: float = 5.0
    uknn_max_likers: int = 500
    uknn_scan_items: int = 10  # a list reads the likers of the user's latest 10 items,
    uknn_scan_likers: int = 200  # the 200 most recent of each (cost per list)
    max_segments: int = MAX_SEGMENTS
    cooc_alpha: float = 0.5
    cooc_beta: float = 0.5
    cooc_forward: float = 0.5  # share of a pair's weight in the earlier item's row; 0.5: symmetric
    cooc_half_life_seconds: float = 0.0  # 0: no wall-clock decay (positions only)
    popularity_half_life_seconds: float = 0.0  # 0: users so far, no decay
    trend_half_life_seconds: float = 6 * 3_600.0
    rerank_learning_rate: float = 0.05  # SGD step of the learning-to-rank layer
    # train the P(like) river ranker (``pipeline.model.ranker``): its example (the chosen
    # item's similarity to the user's likes and skips, a feature row) and river step are
    # ~25 % of the learn step, worth paying only where a list reads the ranker
    # (``ListParams.ranker_power`` > 0, an experiment arm): the worker and the replay set it
    # from their lists' knobs (``pipeline.lists.experiments.reads_like_ranker``)
    like_ranker: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelParams:
        """The knobs a deployment sets (``RECLOOP_TRENDING_HALF_LIFE_SECONDS``, context, bounds)."""
        return cls(
            trend_half_life_seconds=settings.trending_half_life_seconds,
            learn_context=settings.learn_context,
            neighbors=settings.model_neighbors,
            neighbor_memory_mb=settings.model_neighbor_memory_mb,
            catalog_max_items=settings.catalog_max_items,
            catalog_evict_after_seconds=settings.catalog_evict_after_seconds,
            segment_items=settings.trending_items_per_segment,
            max_segments=settings.trending_max_segments,
            uknn_max_users=settings.user_knn_max_users,
            uknn_max_likers=settings.user_knn_max_likers,
            uknn_window=settings.user_knn_window,
        )


@dataclass(frozen=True, slots=True)
class RankerExample:
    """One ranker training example: user x item features (``FEATURES``) and the label."""

    features: tuple[float, ...]
    label: bool

    def as_dict(self) -> dict[str, float]:
        """The features by name, as river takes them."""
        return dict(zip(FEATURES, self.features, strict=True))


class SharedModels:
    """Catalogue, co-occurrence, item statistics and ranker of one worker.

    >>> from pipeline.model.record import LearnRecord
    >>> m = SharedModels()
    >>> m.apply(LearnRecord("b", 0, "watch", 1.0, 1.0, (), (("a", 1.0),)))
    >>> m.cooc.neighbors(m.catalog.index_of("a"))[0].tolist() == [m.catalog.index_of("b")]
    True
    """

    def __init__(self, params: ModelParams | None = None) -> None:
        self.params = params or ModelParams()
        p = self.params
        self.catalog = Catalog(
            max_items=p.catalog_max_items,
            evict_after_ms=int(p.catalog_evict_after_seconds * 1000),
            on_evict=self._forget,
            on_grow=self._reserve,
        )
        self.cooc = CoocModel(
            alpha=p.cooc_alpha,
            beta=p.cooc_beta,
            half_life_seconds=p.cooc_half_life_seconds,
            window=p.window_positions,
            neighbors=p.neighbors,
            keep=p.neighbors_keep,
            max_slots=p.neighbor_memory_mb * 2**20 // 8,
            forward=p.cooc_forward,
        )
        self.stats = ItemStats(
            p.popularity_half_life_seconds,
            p.trend_half_life_seconds,
            segment_items=p.segment_items,
            max_segments=p.max_segments,
            stage_cap=p.stage_cap,
            stage_items=p.stage_items,
        )
        self.user_knn = UserKnn(
            neighbours=p.uknn_neighbours,
            positions=p.uknn_positions,
            window=p.uknn_window,
            max_likers=p.uknn_max_likers,
            max_users=p.uknn_max_users,
            scan_items=p.uknn_scan_items,
            scan_likers=p.uknn_scan_likers,
        )
        self.ranker = Ranker()
        self.reranker = Reranker(p.rerank_learning_rate)
        self.records_applied = 0
        # per source partition, the highest offset whose record these models hold (``admit``)
        self.learned_through: dict[str, int] = {}
        self._reserve(self.catalog.share.shape[0])

    def upsert_item(self, info: ItemInfo) -> None:
        """Add or update an item of the catalogue."""
        self.catalog.upsert(info)

    def record_for(
        self,
        state: UserState,
        item_id: str,
        ts: int,
        kind: str,
        signal: Signal,
        recent: Sequence[tuple[str, float]] | None = None,
    ) -> LearnRecord:
        """The shared-model update for an event, from the user's state before it.

        The record's weight is what the event adds to the user's affinity for the item
        beyond what their kept history already gave it (``features.sequence``): a rating
        converted to a click plus a watch teaches the co-occurrence once, at its strongest.
        Its context is the user's recent distinct items, oldest first (``recent``: that
        view when the caller has it already, ``recent_items`` of ``learn_context``).
        """
        p = self.params
        weight = affinity_of(signal.weight, weak=p.weak_weight, skip=p.skip_weight)
        weight -= given_weight(state.history, item_id, weak=p.weak_weight, skip=p.skip_weight)
        context: tuple[tuple[str, float], ...] = ()
        if weight > 0:
            if recent is None:
                recent = self.recent(state)
            context = tuple(recent)
            if item_id in map(_first, context):  # rare: the item is in the user's view
                context = tuple((i, w) for i, w in context if i != item_id)
        return LearnRecord(
            item_id=item_id,
            ts=ts,
            kind=kind,
            weight=max(weight, 0.0),
            completion=signal.completion,
            segments=trend_segments(state),
            context=context,
            first=item_id not in state.excluded,
            positive=signal.positive,
            stage=state.n_events,
        )

    def recent(self, state: UserState) -> list[tuple[str, float]]:
        """The user's recent distinct items a learn record reads (oldest first).

        ``learn_context`` of them; a ranker example reads the last ``context_size``.
        """
        p = self.params
        return recent_items(state.history, p.learn_context, weak=p.weak_weight, skip=p.skip_weight)

    def apply(self, record: LearnRecord) -> None:
        """Fold a record (this worker's or another's) into the shared models."""
        context = record.context if record.weight > 0 else ()
        indices = self.catalog.ensure_many([record.item_id, *map(_first, context)], record.ts)
        item = indices[0]
        self.stats.observe(
            item,
            record.ts,
            kind=record.kind,
            completion=record.completion,
            segments=record.segments,
            first=record.first,
            stage=record.stage if record.positive else None,
        )
        if record.weight > 0:
            pairs = list(zip(indices[1:], map(_second, context), strict=True))
            self.cooc.learn(item, record.weight, record.ts, pairs)
        self.records_applied += 1
        if self.records_applied % _SWEEP_EVERY == 0:
            self.catalog.evict_stale(self.catalog.clock)

    def observe_user(self, user_id: str, item_id: str, signal: Signal) -> None:
        """A user of this worker chose an item (user-kNN; never from other workers' records)."""
        p = self.params
        if p.uknn_max_users <= 0:
            return
        if affinity_of(signal.weight, weak=p.weak_weight, skip=p.skip_weight) > 0:
            item = self.catalog.get(item_id)
            if item is not None:
                self.user_knn.add(user_id, item)

    def admit(self, source: str, offset: int) -> bool:
        """Whether the model log's record of the event at ``offset`` of ``source`` is new here.

        At-least-once delivery redelivers a batch whose worker died after its model log entry
        but before its users' writes: the users never saw the events, so they are learned and
        logged again, and so are the events of a user whose write conflicted. One partition
        is consumed in offset order by one worker at a time, so in the log's order a record
        is new exactly when its offset is past the highest one logged from that source
        before it (the same guard as the experiment sums). Called in log order, for every
        entry including the worker's own; admitting counts the offset as learned.

        >>> m = SharedModels()
        >>> m.admit("events:0", 5), m.admit("events:0", 5), m.admit("events:0", 6)
        (True, False, True)
        """
        if not self.is_new(source, offset):
            return False
        if source not in self.learned_through and len(self.learned_through) >= MAX_SOURCES:
            del self.learned_through[next(iter(self.learned_through))]
        self.learned_through[source] = offset
        return True

    def is_new(self, source: str, offset: int) -> bool:
        """``admit`` without counting it: a worker's own record, at write time.

        The worker applies its own records when its write is durable and marks them when it
        reads its own entry back (``admit``, in log order): marking them now would refuse
        another worker's records logged before them but not read yet.
        """
        return offset > self.learned_through.get(source, -1)

    def apply_all(self, records: Iterable[LearnRecord]) -> int:
        """``apply`` each record; returns how many."""
        n = 0
        for record in records:
            self.apply(record)
            n += 1
        return n

    def nbytes(self) -> int:
        """Bytes of the models' arrays (catalogue strings and dicts come on top)."""
        return self.catalog.nbytes() + self.cooc.nbytes() + self.stats.nbytes()

    def _reserve(self, capacity: int) -> None:
        """The catalogue grew: per-item vectors follow, so lookups never fall off their end."""
        self.stats.reserve(capacity)
        self.cooc.reserve(capacity)

    def _forget(self, items: IntArray) -> None:
        """The catalogue evicts ``items``: the models drop their state first."""
        self.cooc.evict(items)
        self.stats.evict(items)
        self.user_knn.evict(items)

    def learn_ranker(self, examples: Iterable[RankerExample]) -> None:
        """One online ranker step per example (see ``pipeline.model.learn.ranker_example``)."""
        for example in examples:
            self.ranker.learn(example.as_dict(), example.label)
