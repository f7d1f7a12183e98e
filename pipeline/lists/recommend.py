"""A user's ranked list: candidates -> features -> score blend -> controls -> cap -> reasons.

``Recommender`` only reads the shared models (``pipeline.model``); the same object serves the
worker and the replay benchmark, so the benchmark measures the production code path.
``ListParams`` are the ranking knobs an experiment arm may change.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.config import Settings
from pipeline.events.signals import Signal
from pipeline.features.state import UserState
from pipeline.lists import reasons
from pipeline.lists.candidates import CandidateIndex, allowed
from pipeline.lists.diversity import Scored, diversify
from pipeline.lists.new_items import new_item_slot
from pipeline.lists.rerank import Head, fuse, head_features, pairs
from pipeline.lists.scoring import lookup, sigmoid, top_order
from pipeline.lists.sequence_scores import SequenceKnobs, SequenceScores, sequence_scores
from pipeline.model.arrays import FloatArray, IntArray
from pipeline.model.item_features import (
    WeightedHistory,
    category_vector,
    feature_matrix,
    histories,
    norm,
    segment_of,
)
from pipeline.model.item_stats import GLOBAL_SEGMENT
from pipeline.model.models import SharedModels
from pipeline.model.ranker import FEATURES


@dataclass(frozen=True, slots=True)
class ListParams:
    """List and ranking knobs; defaults are the ones the quality benchmark chose."""

    list_size: int = 20
    category_cap: int = 6
    context_size: int = 20
    recency_decay: float = 0.9
    weak_weight: float = 0.3
    skip_weight: float = 0.3
    dislike_size: int = 10
    knn_candidates: int = 300
    trending_candidates: int = 100
    category_candidates: int = 30
    fresh_candidates: int = 30
    ranker_power: float = 0.0
    declared_weight: float = 2.0
    declared_halfway: float = 5.0
    exploration_share: float = 0.0
    new_item_share: float = 0.0
    new_item_window_ms: int = 86_400_000
    knn_weight: float = 1.0
    category_weight: float = 0.02
    popularity_weight: float = 0.001
    trend_weight: float = 0.0  # trending is a wall-clock signal: quality must not hang on it
    # stage popularity (what users chose at the same point of their sequence), weighted
    # by stage_weight x halfway / (halfway + events): it speaks for cold users
    stage_weight: float = 0.1
    stage_halfway: float = 3.0
    stage_candidates: int = 100
    knn_max_norm: bool = False  # kNN scaled to its best candidate (else: history mean)
    # user-kNN (pipeline.model.user_knn), scaled to the best kNN candidate; 0: not read
    uknn_weight: float = 0.3
    # learning-to-rank layer (pipeline.lists.rerank): re-orders the blend's best
    # rerank_depth candidates (0: off), fused with the blend's order by rerank_mix; trained
    # with rerank_negatives items of the head per positive; heads of rerank_memo users kept
    rerank_depth: int = 50
    rerank_mix: float = 0.5
    rerank_negatives: int = 10
    rerank_memo: int = 4_096

    @classmethod
    def from_settings(cls, settings: Settings) -> ListParams:
        """The knobs a deployment sets (``RECLOOP_LIST_SIZE``, ``_CATEGORY_CAP``, ...)."""
        return cls(
            list_size=settings.list_size,
            category_cap=settings.category_cap,
            exploration_share=settings.exploration_share,
            new_item_share=settings.new_item_share,
            new_item_window_ms=int(settings.new_item_window_seconds * 1000),
            rerank_memo=settings.rerank_memo_users,
        )

    def sequence_knobs(self) -> SequenceKnobs:
        """The knobs of user-kNN and stage popularity (``pipeline.lists.sequence_scores``)."""
        return SequenceKnobs(
            uknn_weight=self.uknn_weight,
            stage_weight=self.stage_weight,
            stage_halfway=self.stage_halfway,
            stage_candidates=self.stage_candidates,
            candidates=self.knn_candidates,
            context_size=self.context_size,
            weak=self.weak_weight,
            skip=self.skip_weight,
        )

    def blend(self) -> FloatArray:
        """Score weights in ``FEATURES`` order."""
        weights = np.zeros(len(FEATURES))
        weights[FEATURES.index("knn")] = self.knn_weight
        weights[FEATURES.index("category")] = self.category_weight
        weights[FEATURES.index("popularity")] = self.popularity_weight
        weights[FEATURES.index("trend")] = self.trend_weight
        return weights


def _bounded_put(memo: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    """Put ``value`` as the newest entry, dropping the oldest past ``limit`` entries."""
    memo[key] = value
    memo.move_to_end(key)
    while len(memo) > limit:
        memo.popitem(last=False)


class Recommender:
    """Ranks lists from the shared models and the candidate pools built over them."""

    def __init__(self, models: SharedModels, params: ListParams | None = None) -> None:
        self.models = models
        self.params = params or ListParams()
        p = self.params
        self.index = CandidateIndex(
            trending=p.trending_candidates,
            per_category=p.category_candidates,
            fresh=p.fresh_candidates,
        )
        # the head each user's latest list was ranked from, to learn from their next choice
        self._heads: OrderedDict[str, tuple[int, Head]] = OrderedDict()
        # per user, an item they chose (clicked) and its training rows, until a positive
        self._pending: OrderedDict[str, tuple[str, FloatArray]] = OrderedDict()
        self._rng = np.random.default_rng(0)

    def refresh_indexes(self, now_ts: int) -> None:
        """Bring the candidate pools (trending, per category, newest) up to date."""
        self.index.refresh(self.models, now_ts)

    def trending(
        self, segment: str = GLOBAL_SEGMENT, n: int | None = None, now_ts: int | None = None
    ) -> list[str]:
        """Item ids trending in a segment (global when the segment is unknown).

        With ``now_ts``, items not available then are left out.
        """
        ids = self.index.trending(self.models.catalog, segment, None if now_ts else n)
        if now_ts is None:
            return ids
        catalog = self.models.catalog
        return [i for i in ids if catalog.availability(i).at(now_ts)][: n or len(ids)]

    def recommend(
        self,
        state: UserState,
        now_ts: int,
        *,
        n: int | None = None,
        personalized: bool = True,
        params: ListParams | None = None,
    ) -> list[Scored]:
        """The user's list: candidates, ranking, controls, exclusions, diversity, reasons.

        ``params`` overrides the ranking knobs (an experiment variant); the models are
        shared. The user's controls always apply, personalised or not.
        """
        p = params or self.params
        models, index = self.models, self.index
        catalog, cooc = models.catalog, models.cooc
        size = n or p.list_size
        controls = state.controls
        personalized = personalized and controls.personalization
        segment = segment_of(models.stats, state)
        pos, neg = (
            histories(
                catalog,
                state,
                context_size=p.context_size,
                dislike_size=p.dislike_size,
                decay=p.recency_decay,
                weak=p.weak_weight,
                skip=p.skip_weight,
            )
            if personalized
            else ([], [])
        )
        prior = (
            controls.prior(state.n_events, weight=p.declared_weight, halfway=p.declared_halfway)
            if personalized
            else 0.0
        )
        knn_ids, knn_scores, anchors = cooc.score_with_anchors(pos)
        if knn_ids.shape[0] > p.knn_candidates:
            keep = np.sort(np.argpartition(-knn_scores, p.knn_candidates)[: p.knn_candidates])
            # still sorted by id
            knn_ids, knn_scores, anchors = knn_ids[keep], knn_scores[keep], anchors[keep]
        pools = [knn_ids, index.trending_for(segment), index.fresh, index.fallback]
        if p.new_item_share > 0 and catalog.recent_live:  # channels that went live lately
            pools.append(np.fromiter(catalog.recent_live, dtype=np.int64))
        extra = sequence_scores(
            models, state, p.sequence_knobs(), personalized=personalized, has_history=bool(pos)
        )
        pools += extra.pools(p.stage_candidates)
        if personalized:
            names = [name for name, _ in state.top_categories(3)]
            names += list(controls.declared) if prior > 0 else []
            for name in names:
                c = catalog.find_category(name)
                if c is not None and c in index.by_category:
                    pools.append(index.by_category[c])
        cands = allowed(catalog, state, np.unique(np.concatenate(pools)), now_ts)
        if cands.shape[0] == 0:
            return []
        knn = lookup(knn_ids, knn_scores, cands)
        knn /= (float(knn.max(initial=0.0)) or 1.0) if p.knn_max_norm else norm(pos)
        # Columns the blend does not weigh only matter to the ranker: skip them without it.
        full = p.ranker_power > 0
        dislike = np.zeros(cands.shape[0])
        if full:
            d_ids, d_scores = cooc.score(neg)
            dislike = lookup(d_ids, d_scores, cands) / norm(neg)
        affinity = state.affinity if personalized else {}
        matrix = feature_matrix(
            catalog, models.stats, cands, knn, dislike, now_ts, segment, affinity, full=full
        )
        # P(chosen) ~ collaborative score plus taste and popularity priors (which decide
        # alone for cold users), times P(liked | chosen) from the ranker when enabled
        blend = p.blend()
        scores = matrix @ blend
        scores = extra.add(scores, cands, knn)
        if p.ranker_power > 0:
            scores = scores * sigmoid(models.ranker.score(matrix)) ** p.ranker_power
        said = np.zeros(cands.shape[0])
        if prior > 0:
            said = self._declared_boost(cands, controls.declared, prior, scores, cold=not pos)
            scores = scores + said
        if personalized and p.rerank_depth > 0:
            scores = self._rerank(state, cands, scores, knn, pos[-1:], extra, matrix, p)
        ids = catalog.ids
        explore = int(round(size * p.exploration_share)) if personalized else 0
        newcomers: list[Scored] = []
        if personalized and p.new_item_share > 0:  # the new-item slot (pipeline.lists.new_items)
            newcomers = new_item_slot(
                catalog,
                state,
                cands,
                matrix[:, FEATURES.index("trend")],
                taken=set(),
                count=int(round(size * p.new_item_share)),
                now_ms=now_ts,
                window_ms=p.new_item_window_ms,
            )

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
        if newcomers:  # the ranked part never repeats them
            shown = {s.item_id for s in newcomers}
            ranked = [s for s in out if s.item_id not in shown]
            out = ranked[: size - explore - len(newcomers)] + newcomers
        if explore:
            out += self._explore(state, cands, {s.item_id for s in out}, explore)
        return out

    def _rerank(
        self,
        state: UserState,
        cands: IntArray,
        scores: FloatArray,
        knn: FloatArray,
        last: WeightedHistory,
        extra: SequenceScores,
        matrix: FloatArray,
        p: ListParams,
    ) -> FloatArray:
        """``scores`` with the head re-ordered by the learning-to-rank layer, kept on top.

        The head's rows are remembered for the user (``rerank_pairs`` trains on them when
        the user next chooses something).
        """
        rows = top_order(scores, min(p.rerank_depth, scores.shape[0]))
        items = cands[rows]
        stats = self.models.stats
        uknn, stage = extra.parts(items, knn[rows])
        stat_rows = matrix[rows]
        stat_rows[:, FEATURES.index("skip_rate")] = stats.skip_rate(items)
        stat_rows[:, FEATURES.index("completion")] = stats.mean_completion(items)
        knn_last = np.zeros(items.shape[0])
        cooc = self.models.cooc
        for item, weight in last:  # the latest item: its row against the head, no sort
            if item < cooc.mass.shape[0]:
                ids, sims = cooc.similarities(item)
                knn_last = (items[:, None] == ids[None, :]).astype(np.float64) @ (sims * weight)
        features = head_features(
            scores[rows],
            knn[rows],
            knn_last,
            uknn,
            stage,
            stat_rows,
            state.n_events,
        )
        self._remember(state, Head(items, features))
        fused = fuse(self.models.reranker.score(features), p.rerank_mix)
        out = scores.copy()
        out[rows] = float(scores[rows[0]]) + 1.0 + fused  # the head stays above the rest
        return out

    def _remember(self, state: UserState, head: Head) -> None:
        """Keep ``head`` as the user's latest, for at most ``rerank_memo`` users."""
        _bounded_put(self._heads, state.user_id, (state.n_events, head), self.params.rerank_memo)

    def rerank_pairs(self, state: UserState, item_id: str, signal: Signal) -> FloatArray | None:
        """Training rows for the learning-to-rank layer when an event confirms a choice.

        Called for each event with the state *before* it (``pipeline.model.learn``). A
        choice is the user's first interaction with an item: the item against items of the
        head their list was ranked from, kept from the last list built on this very state
        (none kept, nothing learned: learning never ranks, so it costs a few microseconds).
        A positive first interaction teaches at once. A click
        (the usual first step before a watch) keeps its rows for the user until a positive
        on the same item teaches them; a skip, or another choice, drops them. An item the
        blend did not bring into the head teaches nothing.
        """
        p = self.params
        if p.rerank_depth <= 0 or not state.controls.personalization:
            return None
        user = state.user_id
        if item_id in state.excluded:  # not a new choice: maybe the positive of a click
            pending = self._pending.get(user)
            if pending is None or pending[0] != item_id:
                return None
            if signal.positive or signal.weight < 0:  # liked, or skipped: settled
                del self._pending[user]
            return pending[1] if signal.positive else None
        self._pending.pop(user, None)
        item = self.models.catalog.get(item_id)
        if item is None or (not signal.positive and signal.completion is not None):
            return None  # a skip or a short watch: chosen and not liked
        kept = self._heads.get(user)
        if kept is None or kept[0] != state.n_events:
            return None
        rows = pairs(kept[1], item, p.rerank_negatives, self._rng)
        if rows is None or signal.positive:
            return rows
        _bounded_put(self._pending, user, (item_id, rows), p.rerank_memo)
        return None

    def _explore(
        self, state: UserState, cands: IntArray, taken: set[str], count: int
    ) -> list[Scored]:
        """Fresh or trending items outside the user's profile, labelled as exploration.

        Against over-personalisation: a share of the list shows what the profile would never
        surface. ``cands`` already obeys exclusions and controls.
        """
        catalog = self.models.catalog
        usual = {name for name, _ in state.top_categories(3)}
        allowed_items = set(cands.tolist())
        out: list[Scored] = []
        for pool, reason in (
            (self.index.fresh, reasons.EXPLORE_FRESH),
            (self.index.trending_for(GLOBAL_SEGMENT), reasons.EXPLORE_TRENDING),
        ):
            for idx in pool.tolist():
                item_id = catalog.ids[idx]
                if idx not in allowed_items or item_id in taken:
                    continue
                if usual & set(catalog.categories_of(idx)):
                    continue
                out.append(Scored(item_id, 0.0, reason))
                taken.add(item_id)
                if len(out) == count:
                    return out
        return out

    def _declared_boost(
        self,
        items: IntArray,
        declared: tuple[str, ...],
        prior: float,
        scores: FloatArray,
        *,
        cold: bool,
    ) -> FloatArray:
        """What the declared-interest prior adds to ``scores`` (see ``features.controls``).

        Once the user has behaviour, a multiplier: items of a declared category score
        ``score x (1 + prior)``. It re-orders what the evidence (popularity, co-occurrence)
        already supports instead of filling the list with a category's long tail, so a
        matching declaration helps and a wrong one costs little and fades
        (``bench/declared.py`` measured both against an additive prior). A ``cold`` user
        (no positive event yet) gets ``prior x (score + best score)``: while ``prior`` is at
        least 1 the declared categories lead the list even where the catalogue has no
        statistics for them, because that is what the user just asked for.
        """
        catalog = self.models.catalog
        vec = category_vector(catalog, dict.fromkeys(declared, 1.0))
        member = np.minimum(catalog.category_mass(items, vec), 1.0)
        evidence = np.maximum(scores, 0.0)
        floor = float(evidence.max(initial=0.0)) if cold else 0.0
        return member * prior * (evidence + floor + 1e-9)

    def _declared_reason(self, state: UserState, item: int) -> str:
        cats = self.models.catalog.categories_of(item)
        said = [c for c in cats if c in state.controls.declared]
        return reasons.you_said(said[0]) if said else reasons.TRENDING_NOW

    def _diversified(
        self, cands: IntArray, scores: FloatArray, order: IntArray, n: int, cap: int
    ) -> list[tuple[int, float]]:
        """``(row, score)`` of the list after the category cap (rows index ``cands``)."""
        cats = self.models.catalog.category_tuples
        items = cands.tolist()
        rows = order.tolist()
        ranked = zip(rows, scores[order].tolist(), strict=True)
        return diversify(ranked, lambda k: cats[items[k]], n=n, cap=cap)

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
        catalog = self.models.catalog
        if best == "knn" and row[0] > 0:
            return self._because(state, anchor, because)
        if best == "category" and row[1] > 0:
            liked = dict(state.top_categories(5))
            cats = [c for c in catalog.categories_of(item) if c in liked]
            if cats:
                return reasons.because_you_like(max(cats, key=liked.__getitem__))
        if best == "fresh" and row[7] > 0:
            return reasons.FRESH
        if segment != GLOBAL_SEGMENT:
            return reasons.trending_reason(segment)
        return reasons.category_trending(catalog.categories_of(item))

    def _because(self, state: UserState, anchor: int, memo: dict[int, str]) -> str:
        """Name a recent positive as the reason ("because you watched X")."""
        if anchor in memo:
            return memo[anchor]
        catalog = self.models.catalog
        item_id = catalog.ids[anchor]
        # the anchor is a recent positive: its latest interaction is near the end
        kind = next((h.kind for h in reversed(state.history) if h.item_id == item_id), "")
        verb = "clicked" if kind == "click" else "watched"
        memo[anchor] = reasons.because(verb, catalog.titles[anchor] or item_id)
        return memo[anchor]
