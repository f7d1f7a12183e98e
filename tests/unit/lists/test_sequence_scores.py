"""User-kNN votes and stage popularity in a list (``pipeline.lists.sequence_scores``)."""

from __future__ import annotations

from pipeline.features.state import UserState
from pipeline.model.catalog import ItemInfo
from pipeline.model.record import LearnRecord
from tests.factories import feed, make_recommender

T0 = 1_700_000_000_000
ITEMS = [ItemInfo(f"m{k}", ("Drama",), 600.0) for k in range(12)]


def test_a_cold_user_is_offered_what_others_chose_first() -> None:
    engine = make_recommender(ITEMS, stage_weight=1.0, popularity_weight=0.001)
    models = engine.models
    for _ in range(5):  # m7: what people choose at their first event
        models.apply(LearnRecord("m7", T0, "watch", 1.0, 1.0, (), (), positive=True, stage=0))
    for _ in range(9):  # m3: more popular overall, but chosen later in people's sequences
        models.apply(LearnRecord("m3", T0, "watch", 1.0, 1.0, (), (), positive=True, stage=9))
    engine.refresh_indexes(T0)
    cold = engine.recommend(UserState("new"), T0 + 1, n=3)
    assert cold[0].item_id == "m7"
    later = UserState("later", n_watch=9)
    assert engine.recommend(later, T0 + 1, n=3)[0].item_id == "m3"


def test_user_knn_brings_what_similar_users_chose() -> None:
    engine = make_recommender(ITEMS, uknn_weight=1.0, knn_weight=0.0)  # user-kNN alone
    models = engine.models
    ts = T0
    for user, items in {"a": ["m0", "m1", "m9"], "b": ["m5", "m6"]}.items():
        state = UserState(user)
        for n, item in enumerate(items):
            ts += 1_000
            feed(models, state, f"{user}{n}", item, ts)
    me = UserState("me")
    feed(models, me, "me0", "m0", ts + 1_000)
    engine.refresh_indexes(ts + 2_000)
    ids = [s.item_id for s in engine.recommend(me, ts + 2_000, n=3)]
    assert "m9" in ids and "m1" in ids  # a's window, not b's
    assert models.user_knn.window_of("me") == [models.catalog.index_of("m0")]
