"""The sequence signals a list adds to item-kNN: user-kNN votes and stage popularity.

Both come with their own candidates and are added to the blend's score, scaled so that their
weights mean the same on any data set:

- **user-kNN** (``pipeline.model.user_knn``) is scaled to the best kNN candidate of the list:
  ``uknn_weight`` is its importance relative to item-kNN;
- **stage popularity** (what users chose at the same point of their sequence,
  ``ItemStats.stage_hitters``) is scaled to its best item and weighted by
  ``stage_weight x halfway / (halfway + events)``: it speaks for cold users and fades as
  their own sequence grows. Positions, never seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.features.sequence import recent_items
from pipeline.features.state import UserState
from pipeline.lists.scoring import lookup
from pipeline.model.arrays import FloatArray, IntArray
from pipeline.model.models import SharedModels
from pipeline.model.trending import HeavyHitters

_EMPTY_IDS: IntArray = np.zeros(0, dtype=np.int64)
_EMPTY_W: FloatArray = np.zeros(0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class SequenceKnobs:
    """The knobs of the two signals (from ``ListParams``)."""

    uknn_weight: float
    stage_weight: float
    stage_halfway: float
    stage_candidates: int
    candidates: int  # user-kNN candidates kept (as many as item-kNN's)
    context_size: int
    weak: float
    skip: float


@dataclass(slots=True)
class SequenceScores:
    """One list's user-kNN votes and stage popularity."""

    stage: HeavyHitters
    stage_weight: float = 0.0  # already times halfway / (halfway + events)
    uknn_ids: IntArray = field(default_factory=lambda: _EMPTY_IDS)
    uknn_scores: FloatArray = field(default_factory=lambda: _EMPTY_W)
    uknn_weight: float = 0.0

    def pools(self, stage_candidates: int) -> list[IntArray]:
        """Candidate item indices these signals bring."""
        out = [self.uknn_ids] if self.uknn_ids.shape[0] else []
        if self.stage_weight > 0:
            out.append(self.stage.top(stage_candidates))
        return out

    def add(self, scores: FloatArray, cands: IntArray, knn: FloatArray) -> FloatArray:
        """``scores`` of ``cands`` plus both signals (``knn``: the candidates' kNN part)."""
        if self.uknn_ids.shape[0]:
            uknn = lookup(self.uknn_ids, self.uknn_scores, cands)
            scale = (float(knn.max(initial=0.0)) or 1.0) / (float(uknn.max(initial=0.0)) or 1.0)
            scores = scores + self.uknn_weight * scale * uknn
        top = self.stage.max()
        if self.stage_weight > 0 and top > 0:
            scores = scores + self.stage_weight * self.stage.values(cands) / top
        return scores

    def parts(
        self, cands: IntArray, knn: FloatArray
    ) -> tuple[FloatArray | None, FloatArray | None]:
        """User-kNN scaled to the best kNN candidate, stage popularity scaled to its best.

        Unweighted (``None`` where the signal is off): the blend weighs them, the
        learning-to-rank layer (``pipeline.lists.rerank``) reads them as features.
        """
        uknn = stage = None
        if self.uknn_ids.shape[0]:
            uknn = lookup(self.uknn_ids, self.uknn_scores, cands)
            scale = (float(knn.max(initial=0.0)) or 1.0) / (float(uknn.max(initial=0.0)) or 1.0)
            uknn *= scale
        top = self.stage.max()
        if self.stage_weight > 0 and top > 0:
            stage = self.stage.values(cands) / top
        return uknn, stage


def sequence_scores(
    models: SharedModels,
    state: UserState,
    knobs: SequenceKnobs,
    *,
    personalized: bool,
    has_history: bool,
) -> SequenceScores:
    """Read both signals for one user (user-kNN only with a history to match)."""
    events = state.n_events if personalized else 0
    out = SequenceScores(
        stage=models.stats.stage_hitters(events),
        stage_weight=knobs.stage_weight * knobs.stage_halfway / (knobs.stage_halfway + events),
    )
    if knobs.uknn_weight > 0 and personalized and has_history:
        recent = recent_items(state.history, knobs.context_size, weak=knobs.weak, skip=knobs.skip)
        index = models.catalog.get
        window = [(i, w) for i, w in ((index(item), w) for item, w in recent) if i is not None]
        ids, scores = models.user_knn.score(state.user_id, window)
        out.uknn_ids, out.uknn_scores = keep_best(ids, scores, knobs.candidates)
        out.uknn_weight = knobs.uknn_weight
    return out


def keep_best(ids: IntArray, scores: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
    """The ``k`` best-scored of ``ids`` (sorted by id), still sorted by id.

    >>> keep_best(np.array([1, 2, 3]), np.array([0.5, 0.1, 0.9]), 2)[0].tolist()
    [1, 3]
    """
    if ids.shape[0] <= k:
        return ids, scores
    keep = np.sort(np.argpartition(-scores, k)[:k])
    return ids[keep], scores[keep]
