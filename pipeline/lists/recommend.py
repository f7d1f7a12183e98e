"""A user's ranked list: candidates -> features -> score blend -> controls -> cap -> reasons.

``Recommender`` only reads the shared models (``pipeline.model``); the same object serves the
worker and the replay benchmark, so the benchmark measures the production code path.
``ListParams`` are the ranking knobs an experiment arm may change.
"""

from __future__ import annotations

import numpy as np

from pipeline.events.signals import Signal
from pipeline.features.state import UserState
from pipeline.lists import reasons
from pipeline.lists.candidates import CandidateIndex, allowed
from pipeline.lists.diversity import Scored, diversify
from pipeline.lists.new_items import new_item_slot
from pipeline.lists.params import ListParams
from pipeline.lists.placement import declared_reason, signal_reason
from pipeline.lists.rerank_layer import RerankLayer
from pipeline.lists.scoring import lookup, sigmoid, top_order
from pipeline.lists.sequence_scores import sequence_scores
from pipeline.model.arrays import FloatArray, IntArray, sorted_unique
from pipeline.model.item_features import (
    category_vector,
    feature_matrix,
    histories,
    norm,
    segment_of,
)
from pipeline.model.item_stats import GLOBAL_SEGMENT
from pipeline.model.models import SharedModels
from pipeline.model.ranker import FEATURES


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
        self.layer = RerankLayer(models, self.params.rerank_memo)

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
        cands = allowed(catalog, state, sorted_unique(np.concatenate(pools)), now_ts)
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
            scores = self.layer.rerank(
                state,
                cands,
                scores,
                knn,
                pos[-1:],
                extra,
                matrix,
                depth=p.rerank_depth,
                mix=p.rerank_mix,
            )
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
                declared_reason(catalog, state, item)
                if wins
                else signal_reason(
                    catalog,
                    state,
                    anchor=anchor,
                    best=FEATURES[b],
                    row=matrix[k],
                    item=item,
                    segment=segment,
                    memo=because,
                ),
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

    def rerank_pairs(self, state: UserState, item_id: str, signal: Signal) -> FloatArray | None:
        """Training rows for the learning-to-rank layer when an event confirms a choice.

        Called for each event with the state *before* it (``pipeline.model.learn``); see
        ``RerankLayer.pairs``. Learning never ranks, so it costs a few microseconds.
        """
        p = self.params
        if p.rerank_depth <= 0 or not state.controls.personalization:
            return None
        return self.layer.pairs(state, item_id, signal, p.rerank_negatives)

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

    def _diversified(
        self, cands: IntArray, scores: FloatArray, order: IntArray, n: int, cap: int
    ) -> list[tuple[int, float]]:
        """``(row, score)`` of the list after the category cap (rows index ``cands``)."""
        cats = self.models.catalog.category_tuples
        items = cands.tolist()
        rows = order.tolist()
        ranked = zip(rows, scores[order].tolist(), strict=True)
        return diversify(ranked, lambda k: cats[items[k]], n=n, cap=cap)
