"""The learning-to-rank layer in a list's life: re-order its head, keep it, learn from it.

``pipeline.lists.rerank`` is the pure numpy (features, fused order, training pairs) and
``pipeline.model.reranker`` the river model; this is the per-user memory that ties a list to
the choice that follows it. Learning must not rank (the learn step would cost a list build),
so the head each user's latest list was ranked from is kept (at most ``memo`` users, oldest
dropped first), and a clicked item's training rows wait until a positive on the same item
settles them (a click is the usual first step before a watch).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from pipeline.events.signals import Signal
from pipeline.features.state import UserState
from pipeline.lists.rerank import Head, fuse, head_features, pairs
from pipeline.lists.scoring import lookup, top_order
from pipeline.lists.sequence_scores import SequenceScores
from pipeline.model.arrays import FloatArray, IntArray
from pipeline.model.item_features import WeightedHistory
from pipeline.model.models import SharedModels
from pipeline.model.ranker import FEATURES

_SKIP, _COMPLETION = FEATURES.index("skip_rate"), FEATURES.index("completion")


def bounded_put(memo: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    """Put ``value`` as the newest entry, dropping the oldest past ``limit`` entries."""
    memo[key] = value
    memo.move_to_end(key)
    while len(memo) > limit:
        memo.popitem(last=False)


class RerankLayer:
    """Re-orders list heads with the shared river model and turns choices into its lessons."""

    def __init__(self, models: SharedModels, memo: int) -> None:
        self.models = models
        self.memo = memo
        # the head each user's latest list was ranked from, to learn from their next choice
        self.heads: OrderedDict[str, tuple[int, Head]] = OrderedDict()
        # per user, an item they chose (clicked) and its training rows, until a positive
        self.pending: OrderedDict[str, tuple[str, FloatArray]] = OrderedDict()
        self._rng = np.random.default_rng(0)

    def rerank(
        self,
        state: UserState,
        cands: IntArray,
        scores: FloatArray,
        knn: FloatArray,
        last: WeightedHistory,
        extra: SequenceScores,
        matrix: FloatArray,
        *,
        depth: int,
        mix: float,
    ) -> FloatArray:
        """``scores`` with the best ``depth`` re-ordered by the layer, kept on top.

        The head's rows are remembered for the user (``pairs`` trains on them when the user
        next chooses something).
        """
        rows = top_order(scores, min(depth, scores.shape[0]))
        items = cands[rows]
        stats = self.models.stats
        uknn, stage = extra.parts(items, knn[rows])
        stat_rows = matrix[rows]
        stat_rows[:, _SKIP] = stats.skip_rate(items)
        stat_rows[:, _COMPLETION] = stats.mean_completion(items)
        knn_last = np.zeros(items.shape[0])
        cooc = self.models.cooc
        for item, weight in last:  # the latest item: its row against the head
            if item < cooc.mass.shape[0]:
                ids, sims = cooc.similarities(item)
                # a row holds an item at most once: a sorted lookup, not a head x row
                # comparison matrix and its product (the same floats, a tenth of the work)
                order = np.argsort(ids)
                knn_last = lookup(ids[order], sims[order] * weight, items)
        features = head_features(
            scores[rows], knn[rows], knn_last, uknn, stage, stat_rows, state.n_events
        )
        bounded_put(self.heads, state.user_id, (state.n_events, Head(items, features)), self.memo)
        fused = fuse(self.models.reranker.score(features), mix)
        out = scores.copy()
        out[rows] = float(scores[rows[0]]) + 1.0 + fused  # the head stays above the rest
        return out

    def pairs(
        self, state: UserState, item_id: str, signal: Signal, negatives: int
    ) -> FloatArray | None:
        """Training rows when an event confirms a choice (``state`` is from before it).

        A choice is the user's first interaction with an item: the item against
        ``negatives`` items of the head their list was ranked from, kept from the last list
        built on this very state (none kept, nothing learned). A positive first interaction
        teaches at once. A click keeps its rows for the user until a positive on the same
        item teaches them; a skip, or another choice, drops them. An item the blend did not
        bring into the head teaches nothing.
        """
        user = state.user_id
        if item_id in state.excluded:  # not a new choice: maybe the positive of a click
            pending = self.pending.get(user)
            if pending is None or pending[0] != item_id:
                return None
            if signal.positive or signal.weight < 0:  # liked, or skipped: settled
                del self.pending[user]
            return pending[1] if signal.positive else None
        self.pending.pop(user, None)
        item = self.models.catalog.get(item_id)
        if item is None or (not signal.positive and signal.completion is not None):
            return None  # a skip or a short watch: chosen and not liked
        kept = self.heads.get(user)
        if kept is None or kept[0] != state.n_events:
            return None
        rows = pairs(kept[1], item, negatives, self._rng)
        if rows is None or signal.positive:
            return rows
        bounded_put(self.pending, user, (item_id, rows), self.memo)
        return None
