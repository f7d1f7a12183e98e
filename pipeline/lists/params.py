"""``ListParams``: the ranking knobs a deployment sets and an experiment arm may change.

Kept apart from ``Recommender`` so that the readers of knobs (experiments, the API's read
model, the replay) do not depend on the ranking code, and so one frozen value describes a
list's recipe: the worker ranks with ``ListParams.from_settings``, an experiment arm with
``variant_params(base, variant)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import Settings
from pipeline.lists.sequence_scores import SequenceKnobs
from pipeline.model.arrays import FloatArray
from pipeline.model.ranker import FEATURES


@dataclass(frozen=True, slots=True)
class ListParams:
    """List and ranking knobs; defaults are the ones the quality benchmark chose."""

    list_size: int = 20
    category_cap: int = 6
    context_size: int = 20
    recency_decay: float = 0.9
    weak_weight: float = 0.5
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
