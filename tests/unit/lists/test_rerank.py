"""The learning-to-rank layer in lists: features, fused order, training pairs, memo, learning."""

from __future__ import annotations

import numpy as np

from pipeline.features.state import UserState
from pipeline.lists.recommend import Recommender
from pipeline.lists.rerank import Head, fuse, head_features, pairs
from pipeline.model.catalog import ItemInfo
from pipeline.model.learn import apply_learning, learn_batch
from pipeline.model.reranker import RERANK_FEATURES
from tests.factories import USER_PARAMS, event_of, make_recommender

T0 = 1_700_000_000_000
COLS = {name: k for k, name in enumerate(RERANK_FEATURES)}


def test_features_are_shares_of_the_head_and_crosses_with_coldness() -> None:
    rows = np.zeros((3, 8))
    rows[:, 2] = [0.2, 0.4, 0.8]  # popularity column of the ranker's features
    f = head_features(
        np.array([4.0, 2.0, 1.0]),
        np.array([2.0, 1.0, 0.0]),
        np.array([0.0, 0.0, 1.0]),
        np.array([0.0, 3.0, 1.5]),
        np.array([1.0, 0.0, 2.0]),
        rows,
        n_events=3,
    )
    assert f[:, COLS["blend"]].tolist() == [1.0, 0.5, 0.25]
    assert f[:, COLS["uknn"]].tolist() == [0.0, 1.0, 0.5]
    assert f[:, COLS["stage"]].tolist() == [0.5, 0.0, 1.0]
    assert f[0, COLS["cold"]] == 0.5
    assert f[:, COLS["popularity_cold"]].tolist() == [0.1, 0.2, 0.4]
    assert f[:, COLS["rank"]].tolist()[0] == 1.0


def test_fuse_mixes_the_two_orders() -> None:
    learned = np.array([0.0, 1.0, 2.0])  # the reverse of the blend's order
    half = fuse(learned, 0.5)
    assert np.isclose(half[0], half[2])  # first in one order, last in the other
    assert np.argsort(-fuse(learned, 0.0)).tolist() == [2, 1, 0]
    assert np.argsort(-fuse(learned, 1.0)).tolist() == [0, 1, 2]


def test_pairs_draw_at_most_the_negatives_asked_for() -> None:
    features = np.arange(20 * len(RERANK_FEATURES), dtype=float).reshape(20, -1)
    head = Head(np.arange(100, 120), features)
    rows = pairs(head, 105, 4, np.random.default_rng(1))
    assert rows is not None and rows.shape == (4, len(RERANK_FEATURES))
    assert not (rows == 0).all(axis=1).any()  # never the chosen item against itself


def _engine(**params: object) -> Recommender:
    items = [ItemInfo(f"i{k}", (f"c{k % 4}",), duration_seconds=600.0) for k in range(40)]
    return make_recommender(items, **{"rerank_depth": 20, **params})


def _learn(
    engine: Recommender,
    state: UserState,
    item: str,
    ts: int,
    *,
    kind: str = "watch",
    watch_seconds: float | None = 600.0,
) -> None:
    event = event_of(
        state, f"e{state.n_events}-{item}", item, ts, kind=kind, watch_seconds=watch_seconds
    )
    learning = learn_batch(
        engine.models,
        {state.user_id: state},
        [event],
        params=USER_PARAMS,
        threshold=0.6,
        rerank=engine.rerank_pairs,
    )
    apply_learning(engine.models, learning)
    state.mark_clean()


def _train(engine: Recommender) -> None:
    """Users who each see their list, then watch i0..i5 in order: i(k+1) follows i(k)."""
    for u in range(30):
        state = UserState(f"u{u}")
        for k in range(6):
            ts = T0 + 1_000 * (u * 10 + k)
            engine.recommend(state, ts)
            _learn(engine, state, f"i{(k + u) % 6}", ts)


def test_positives_train_the_layer_before_the_event_is_learned() -> None:
    engine = _engine()
    _train(engine)
    assert engine.models.reranker.updates > 0
    weights = engine.models.reranker.weight_vector()
    assert weights.tolist() != [1.0] + [0.0] * (len(RERANK_FEATURES) - 1)


def test_the_head_stays_on_top_and_the_list_is_whole() -> None:
    engine = _engine(rerank_mix=0.0)
    _train(engine)
    engine.refresh_indexes(T0)
    state = UserState("new")
    _learn(engine, state, "i0", T0 + 10**6)
    ranked = engine.recommend(state, T0 + 10**6 + 1)
    ids = [r.item_id for r in ranked]
    assert len(ids) == len(set(ids)) == engine.params.list_size
    assert "i0" not in ids  # exclusions still apply
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)


def test_off_by_depth_zero_learns_nothing() -> None:
    engine = _engine(rerank_depth=0)
    _train(engine)
    assert engine.models.reranker.updates == 0


def test_heads_are_kept_for_at_most_rerank_memo_users() -> None:
    engine = _engine(rerank_memo=3)
    _train(engine)
    engine.refresh_indexes(T0)
    for u in range(5):
        engine.recommend(UserState(f"u{u}"), T0)
    assert len(engine.layer.heads) == 3
    before = engine.models.reranker.updates
    _learn(engine, UserState("u0"), "i1", T0 + 2)  # its head was dropped: nothing to learn
    assert engine.models.reranker.updates == before
    _learn(engine, UserState("u4"), "i1", T0 + 2)  # kept: learned
    assert engine.models.reranker.updates > before


def test_learning_without_a_kept_head_learns_nothing() -> None:
    engine = _engine()
    _learn(engine, UserState("unseen"), "i1", T0)
    assert engine.models.reranker.updates == 0


def test_a_click_teaches_once_its_watch_is_a_positive() -> None:
    engine = _engine()
    _train(engine)
    engine.refresh_indexes(T0)
    state = UserState("clicker")
    _learn(engine, state, "i0", T0 + 10**6)
    ts = T0 + 10**6 + 10
    ranked = [r.item_id for r in engine.recommend(state, ts)]
    chosen = ranked[0]
    before = engine.models.reranker.updates
    _learn(engine, state, chosen, ts + 1, kind="click", watch_seconds=None)
    assert engine.models.reranker.updates == before  # a click alone: not yet liked
    _learn(engine, state, chosen, ts + 2)  # the watch of the clicked item
    assert engine.models.reranker.updates > before


def test_a_clicked_then_skipped_item_teaches_nothing() -> None:
    engine = _engine()
    _train(engine)
    engine.refresh_indexes(T0)
    state = UserState("skipper")
    _learn(engine, state, "i0", T0 + 10**6)
    ts = T0 + 10**6 + 10
    chosen = engine.recommend(state, ts)[0].item_id
    before = engine.models.reranker.updates
    _learn(engine, state, chosen, ts + 1, kind="click", watch_seconds=None)
    _learn(engine, state, chosen, ts + 2, kind="skip", watch_seconds=5.0)
    _learn(engine, state, chosen, ts + 3)  # a later watch is no longer this choice's
    assert engine.models.reranker.updates == before
