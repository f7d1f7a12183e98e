"""The recommendation engine: learning from events and building a user's list.

One ``Engine`` per worker process holds the shared models (catalogue, co-occurrence, item
statistics, ranker). The same object serves the Faust agents and the replay benchmark, so the
benchmark measures the production code path.

Learning is split in two so that several workers can share one model:

* ``record_for`` turns an event plus the user's state *before* the event into a
  ``LearnRecord``: everything the shared models need, with public ids only. Records are
  commutative increments, so any worker can apply any other worker's records in any order.
* ``apply`` folds a record into the models (the worker's own records at once, the others'
  when it syncs, see ``pipeline.stores.model_log``).

The ranker is the exception: it learns from the worker's own events only (see
``train_ranker``), and is shared through snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.events.signals import Signal
from pipeline.features.state import Interaction, UserState
from pipeline.lists.diversity import Scored, diversify, recency_weights
from pipeline.lists.scoring import log_share, lookup, norm, sigmoid, top, top_order
from pipeline.model.catalog import Catalog, FloatArray, IntArray, ItemInfo
from pipeline.model.cooc import CoocModel
from pipeline.model.item_stats import GLOBAL_SEGMENT, ItemStats
from pipeline.model.ranker import FEATURES, Ranker
from pipeline.model.record import LearnRecord, trend_segments

_WEEK_MS = 7 * 86_400_000.0


@dataclass(frozen=True, slots=True)
class EngineParams:
    """Model and list knobs; defaults are the ones the quality benchmark chose."""

    list_size: int = 20
    category_cap: int = 6
    context_size: int = 20
    recency_decay: float = 0.9
    dislike_size: int = 10
    neighbors: int = 200
    cooc_alpha: float = 0.5
    cooc_beta: float = 0.5
    cooc_half_life_seconds: float = 180 * 86_400.0
    popularity_half_life_seconds: float = 30 * 86_400.0
    trend_half_life_seconds: float = 6 * 3_600.0
    knn_candidates: int = 300
    trending_candidates: int = 100
    category_candidates: int = 30
    fresh_candidates: int = 30
    ranker_power: float = 0.0
    declared_weight: float = 2.0
    declared_halfway: float = 5.0
    exploration_share: float = 0.0
    category_weight: float = 0.02
    popularity_weight: float = 0.001
    trend_weight: float = 0.001


class Engine:
    """Shared models plus the candidate -> rank -> diversify pipeline."""

    def __init__(self, params: EngineParams | None = None) -> None:
        self.params = params or EngineParams()
        p = self.params
        self.catalog = Catalog()
        self.cooc = CoocModel(
            alpha=p.cooc_alpha,
            beta=p.cooc_beta,
            half_life_seconds=p.cooc_half_life_seconds,
            neighbors=p.neighbors,
        )
        self.stats = ItemStats(p.popularity_half_life_seconds, p.trend_half_life_seconds)
        self.ranker = Ranker()
        self.records_applied = 0
        self._trending: dict[str, IntArray] = {}
        self._by_category: dict[int, IntArray] = {}
        self._fresh: IntArray = np.zeros(0, dtype=np.int64)
        self._fallback: IntArray = np.zeros(0, dtype=np.int64)

    # ----------------------------------------------------------------------- learning
    def upsert_item(self, info: ItemInfo) -> None:
        """Add or update an item of the catalogue."""
        self.catalog.upsert(info)

    def record_for(
        self, state: UserState, item_id: str, ts: int, kind: str, signal: Signal
    ) -> LearnRecord:
        """The shared-model update for an event, from the user's state before it."""
        context: tuple[tuple[str, float], ...] = ()
        if signal.weight > 0:
            context = tuple(
                (h.item_id, h.weight) for h in state.positives(self.params.context_size)
            )
        return LearnRecord(
            item_id=item_id,
            ts=ts,
            kind=kind,
            weight=signal.weight,
            completion=signal.completion,
            segments=trend_segments(state),
            context=context,
        )

    def apply(self, record: LearnRecord) -> None:
        """Fold a record (this worker's or another's) into the shared models."""
        item = self.catalog.ensure(record.item_id)
        self.stats.observe(
            item,
            record.ts,
            kind=record.kind,
            completion=record.completion,
            segments=record.segments,
        )
        if record.weight > 0:
            context = [(self.catalog.ensure(i), w) for i, w in record.context]
            self.cooc.learn(item, record.weight, record.ts, context)
        self.records_applied += 1

    def train_ranker(self, state: UserState, item_id: str, signal: Signal, ts: int) -> None:
        """One ranker step: learn whether the user liked an item they chose.

        The ranker estimates P(liked | chosen) from user x item features; the collaborative
        score estimates what the user will choose. Clicks teach it nothing (interest, not
        yet taste).
        """
        if signal.completion is None:
            return
        item = self.catalog.ensure(item_id)
        pos, neg = self._histories(state)
        items = np.array([item], dtype=np.int64)
        knn = np.array([self.cooc.similarity(item, pos)]) / norm(pos)
        dislike = np.array([self.cooc.similarity(item, neg)]) / norm(neg)
        row = self._features(state, items, knn, dislike, ts, self._segment(state), state.affinity)[
            0
        ]
        self.ranker.learn(dict(zip(FEATURES, row.tolist(), strict=True)), signal.positive)

    # ----------------------------------------------------------------------- indexes
    def refresh_indexes(self, now_ts: int) -> None:
        """Recompute trending per segment, per category, and the newest items.

        Called on a timer (workers) or every few hundred events (replay): trending moves on
        a scale of minutes, so recomputing it per list would be wasted work.
        """
        n = len(self.catalog)
        p = self.params
        self._trending = {
            seg: top(arr[:n], p.trending_candidates) for seg, arr in self.stats.trend.items()
        }
        glob = self.stats.trending(GLOBAL_SEGMENT)
        glob = np.pad(glob, (0, max(0, n - glob.shape[0])))[:n]
        membership = self.catalog.membership[:n]
        self._by_category = {
            c: top(np.where(membership[:, c] > 0, glob + 1e-12, 0.0), p.category_candidates)
            for c in range(len(self.catalog.category_names))
        }
        published = self.catalog.published_ts[:n]
        fresh = top(np.where(published <= now_ts, published, 0.0), p.fresh_candidates)
        self._fresh = fresh[published[fresh] > 0]
        # last resort for an empty or brand-new catalogue: never an empty list
        self._fallback = np.arange(min(n, p.trending_candidates), dtype=np.int64)

    def trending(self, segment: str = GLOBAL_SEGMENT, n: int | None = None) -> list[str]:
        """Item ids trending in a segment (global when the segment is unknown)."""
        top = self._trending.get(segment, self._trending.get(GLOBAL_SEGMENT))
        if top is None:
            return []
        return [self.catalog.item_id(int(i)) for i in top[: n or len(top)]]

    # ----------------------------------------------------------------------- ranking
    def recommend(
        self,
        state: UserState,
        now_ts: int,
        *,
        n: int | None = None,
        personalized: bool = True,
        params: EngineParams | None = None,
    ) -> list[Scored]:
        """The user's list: candidates, ranking, controls, exclusions, diversity, reasons.

        ``params`` overrides the ranking knobs (an experiment variant); the models are
        shared. The user's controls always apply, personalised or not.
        """
        p = params or self.params
        size = n or p.list_size
        controls = state.controls
        personalized = personalized and controls.personalization
        segment = self._segment(state)
        pos, neg = self._histories(state) if personalized else ([], [])
        prior = (
            controls.prior(state.n_events, weight=p.declared_weight, halfway=p.declared_halfway)
            if personalized
            else 0.0
        )
        knn_ids, knn_scores, anchors = self.cooc.score_with_anchors(pos)
        if knn_ids.shape[0] > p.knn_candidates:
            keep = np.sort(np.argpartition(-knn_scores, p.knn_candidates)[: p.knn_candidates])
            # still sorted by id
            knn_ids, knn_scores, anchors = knn_ids[keep], knn_scores[keep], anchors[keep]
        pools = [knn_ids, self._trending_for(segment), self._fresh, self._fallback]
        if personalized:
            names = [name for name, _ in state.top_categories(3)]
            names += list(controls.declared) if prior > 0 else []
            for name in names:
                c = self.catalog.find_category(name)
                if c is not None and c in self._by_category:
                    pools.append(self._by_category[c])
        cands = np.unique(np.concatenate(pools))
        cands = self._allowed(state, cands)
        if cands.shape[0] == 0:
            return []
        knn = lookup(knn_ids, knn_scores, cands) / norm(pos)
        # Columns the blend does not weigh only matter to the ranker: skip them without it.
        full = p.ranker_power > 0
        dislike = np.zeros(cands.shape[0])
        if full:
            d_ids, d_scores = self.cooc.score(neg)
            dislike = lookup(d_ids, d_scores, cands) / norm(neg)
        affinity = state.affinity if personalized else {}
        matrix = self._features(state, cands, knn, dislike, now_ts, segment, affinity, full=full)
        # P(chosen) ~ collaborative score plus taste and popularity priors (which decide
        # alone for cold users), times P(liked | chosen) from the ranker when enabled
        blend = self._blend(p)
        scores = matrix @ blend
        if p.ranker_power > 0:
            scores = scores * sigmoid(self.ranker.score(matrix)) ** p.ranker_power
        said = np.zeros(cands.shape[0])
        if prior > 0:
            said = self._declared_boost(cands, controls.declared, prior, scores, cold=not pos)
            scores = scores + said
        ids = self.catalog.ids
        explore = int(round(size * p.exploration_share)) if personalized else 0
        # Only the head of the ranking can reach the list: sort that, and the rest only if
        # the category cap leaves the list short.
        head = min(scores.shape[0], (size - explore) * (p.category_cap + 4))
        order = top_order(scores, head)
        chosen = self._diversified(cands, scores, order, size - explore, p.category_cap)
        if len(chosen) < size - explore and head < scores.shape[0]:
            order = np.argsort(-scores, kind="stable")
            chosen = self._diversified(cands, scores, order, size - explore, p.category_cap)
        rows = [k for k, _ in chosen]
        contrib = matrix[rows] * blend
        best = np.argmax(contrib, axis=1).tolist() if chosen else []
        declared_wins = (said[rows] > contrib.max(axis=1)).tolist() if chosen else []
        items = cands[rows].tolist()
        # the recent positive behind each item's kNN score (read only where that is > 0)
        anchor_of = (
            anchors[
                np.minimum(np.searchsorted(knn_ids, cands[rows]), max(0, anchors.shape[0] - 1))
            ].tolist()
            if anchors.shape[0]
            else [0] * len(rows)
        )
        because: dict[int, str] = {}
        out = [
            Scored(
                ids[item],
                round(score, 6),
                self._declared_reason(state, item)
                if wins
                else self._reason(state, anchor, FEATURES[b], matrix[k], item, segment, because),
            )
            for (k, score), item, anchor, b, wins in zip(
                chosen, items, anchor_of, best, declared_wins, strict=True
            )
        ]
        if explore:
            out += self._explore(state, cands, {s.item_id for s in out}, explore)
        return out

    def _allowed(self, state: UserState, cands: IntArray) -> IntArray:
        """Drop items the user interacted with and everything their controls forbid."""
        ids = self.catalog.ids
        excluded = state.excluded
        if excluded:
            if len(excluded) <= cands.shape[0]:  # look up the fewer ids of the two
                index = self.catalog.get
                drop = [i for i in map(index, excluded) if i is not None]
                cands = cands[~np.isin(cands, drop)]
            else:
                cands = cands[[ids[i] not in excluded for i in cands.tolist()]]
        controls = state.controls
        if not controls.empty and cands.shape[0]:
            infos = self.catalog.infos
            keep = [
                controls.allows(ids[i], infos[i].categories, infos[i].creator_id)
                for i in cands.tolist()
            ]
            cands = cands[keep]
        return cands

    def _explore(
        self, state: UserState, cands: IntArray, taken: set[str], count: int
    ) -> list[Scored]:
        """Fresh or trending items outside the user's profile, labelled as exploration.

        Against over-personalisation: a share of the list shows what the profile would never
        surface. ``cands`` already obeys exclusions and controls.
        """
        usual = {name for name, _ in state.top_categories(3)}
        allowed = set(cands.tolist())
        out: list[Scored] = []
        for pool, reason in (
            (self._fresh, "exploration: new this week"),
            (self._trending_for(GLOBAL_SEGMENT), "exploration: trending outside your usual"),
        ):
            for idx in pool.tolist():
                item_id = self.catalog.ids[idx]
                if idx not in allowed or item_id in taken:
                    continue
                if usual & set(self.catalog.categories_of(idx)):
                    continue
                out.append(Scored(item_id, 0.0, reason))
                taken.add(item_id)
                if len(out) == count:
                    return out
        return out

    # ----------------------------------------------------------------------- helpers
    @staticmethod
    def _blend(p: EngineParams) -> FloatArray:
        """Score weights in ``FEATURES`` order."""
        blend = np.zeros(len(FEATURES))
        blend[FEATURES.index("knn")] = 1.0
        blend[FEATURES.index("category")] = p.category_weight
        blend[FEATURES.index("popularity")] = p.popularity_weight
        blend[FEATURES.index("trend")] = p.trend_weight
        return blend

    def _segment(self, state: UserState) -> str:
        if state.context.locale and f"locale:{state.context.locale}" in self.stats.trend:
            return f"locale:{state.context.locale}"
        return GLOBAL_SEGMENT

    def _trending_for(self, segment: str) -> IntArray:
        top = self._trending.get(segment)
        if top is None:
            top = self._trending.get(GLOBAL_SEGMENT, np.zeros(0, dtype=np.int64))
        return top

    def _histories(
        self, state: UserState
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        p = self.params
        return (
            self._weighted(state.positives(p.context_size)),
            self._weighted(state.negatives(p.dislike_size)),
        )

    def _weighted(self, history: list[Interaction]) -> list[tuple[int, float]]:
        weights = recency_weights(len(history), self.params.recency_decay)
        out = []
        for h, r in zip(history, weights, strict=True):
            idx = self.catalog.get(h.item_id)
            if idx is not None:
                out.append((idx, abs(h.weight) * r))
        return out

    def _features(
        self,
        state: UserState,
        items: IntArray,
        knn: FloatArray,
        dislike: FloatArray,
        now_ts: int,
        segment: str,
        affinity: dict[str, float],
        *,
        full: bool = True,
    ) -> FloatArray:
        """One row per item, columns in ``FEATURES`` order (all roughly in -1..1).

        The category column is the user's observed affinity, scaled to its maximum. Without
        ``full`` only the columns the score blend weighs are computed (the rest are 0).
        """
        cat = np.zeros(items.shape[0])
        if affinity:
            vec = self._category_vector(affinity)
            vec /= float(np.abs(vec).max()) or 1.0
            cat = self.catalog.membership[items] @ vec
        popularity = log_share(self.stats.popularity, items)
        trend = log_share(self.stats.trending(segment), items)
        if not full:
            zero = np.zeros(items.shape[0])
            return np.column_stack([knn, cat, popularity, trend, zero, zero, zero, zero])
        published = self.catalog.published_ts[items]
        age = np.maximum(now_ts - published, 0.0)
        fresh = np.where(published > 0, np.exp(-age / _WEEK_MS), 0.0)
        return np.column_stack(
            [
                knn,
                cat,
                popularity,
                trend,
                self.stats.skip_rate(items),
                self.stats.mean_completion(items),
                dislike,
                fresh,
            ]
        )

    def _category_vector(self, values: dict[str, float]) -> FloatArray:
        """A per-category vector (catalogue category order) from category names."""
        vec = np.zeros(self.catalog.membership.shape[1])
        for name, value in values.items():
            c = self.catalog.find_category(name)
            if c is not None:
                vec[c] = value
        return vec

    def _declared_boost(
        self,
        items: IntArray,
        declared: tuple[str, ...],
        prior: float,
        scores: FloatArray,
        *,
        cold: bool,
    ) -> FloatArray:
        """What the declared-interest prior adds to ``scores`` (see ``pipeline.features.controls``).

        Once the user has behaviour, a multiplier: items of a declared category score
        ``score x (1 + prior)``. It re-orders what the evidence (popularity, co-occurrence)
        already supports instead of filling the list with a category's long tail, so a
        matching declaration helps and a wrong one costs little and fades
        (``bench/declared.py`` measured both against an additive prior). A ``cold`` user
        (no positive event yet) gets ``prior x (score + best score)``: while ``prior`` is at
        least 1 the declared categories lead the list even where the catalogue has no
        statistics for them, because that is what the user just asked for.
        """
        vec = self._category_vector(dict.fromkeys(declared, 1.0))
        member = np.minimum(self.catalog.membership[items] @ vec, 1.0)
        evidence = np.maximum(scores, 0.0)
        floor = float(evidence.max(initial=0.0)) if cold else 0.0
        return member * prior * (evidence + floor + 1e-9)

    def _declared_reason(self, state: UserState, item: int) -> str:
        said = [c for c in self.catalog.categories_of(item) if c in state.controls.declared]
        return f"you said you like {said[0]}" if said else "trending now"

    def _diversified(
        self, cands: IntArray, scores: FloatArray, order: IntArray, n: int, cap: int
    ) -> list[tuple[int, float]]:
        """``(row, score)`` of the list after the category cap (rows index ``cands``)."""
        infos = self.catalog.infos
        items = cands.tolist()
        rows = order.tolist()
        ranked = zip(rows, scores[order].tolist(), strict=True)
        return diversify(ranked, lambda k: infos[items[k]].categories, n=n, cap=cap)

    def _reason(
        self,
        state: UserState,
        anchor: int,
        best: str,
        row: FloatArray,
        item: int,
        segment: str,
        because: dict[int, str],
    ) -> str:
        """Say which signal placed the item: its largest weighted feature contribution.

        ``anchor`` is the recent positive contributing most to the item's kNN score;
        ``because`` memoises the "because you watched X" text per anchor within one list.
        """
        if best == "knn" and row[0] > 0:
            return self._because(state, anchor, because)
        if best == "category" and row[1] > 0:
            liked = dict(state.top_categories(5))
            cats = [c for c in self.catalog.categories_of(item) if c in liked]
            if cats:
                return f"because you like {max(cats, key=liked.__getitem__)}"
        if best == "fresh" and row[7] > 0:
            return "new this week"
        if segment != GLOBAL_SEGMENT:
            return f"trending in {segment.split(':', 1)[1]}"
        item_cats = self.catalog.categories_of(item)
        return f"trending in {item_cats[0]}" if item_cats else "trending now"

    def _because(self, state: UserState, anchor: int, memo: dict[int, str]) -> str:
        """Name a recent positive as the reason ("because you watched X")."""
        if anchor in memo:
            return memo[anchor]
        info = self.catalog.infos[anchor]
        # the anchor is a recent positive: its latest interaction is near the end
        kind = next((h.kind for h in reversed(state.history) if h.item_id == info.item_id), "")
        verb = "clicked" if kind == "click" else "watched"
        memo[anchor] = f"because you {verb} {info.title or info.item_id}"
        return memo[anchor]
