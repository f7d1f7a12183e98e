"""Lists from the ``Recommender``: candidates, exclusions, cap, reasons, declared interests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from pipeline.features.controls import apply_control
from pipeline.features.state import UserState
from pipeline.lists.recommend import Recommender
from pipeline.model.catalog import ItemInfo
from schemas.control import Control
from tests.factories import feed, make_recommender

T0 = 1_700_000_000_000
CATEGORIES = ("Drama", "Comedy", "Horror", "Documentary")
PREFIX = {name: name[:3].lower() for name in CATEGORIES}

EngineFactory = Callable[..., Recommender]


def item_id(category: str, k: int) -> str:
    return f"{PREFIX[category]}-{k}"


def category_of(engine: Recommender, item: str) -> str:
    catalog = engine.models.catalog
    return catalog.categories_of(catalog.index_of(item))[0]


@pytest.fixture
def engine_factory() -> EngineFactory:
    """Factory: a ``Recommender`` over 4 categories x 10 items (``dra-0`` .. ``doc-9``)."""

    def _make(**params: object) -> Recommender:
        items = [
            ItemInfo(item_id(c, k), (c,), duration_seconds=600.0, title=f"{c} {k}")
            for c in CATEGORIES
            for k in range(10)
        ]
        return make_recommender(items, **params)

    return _make


# =========================================================================== Engine
def _ids(ranked: list[object]) -> list[str]:
    return [r.item_id for r in ranked]  # type: ignore[attr-defined]


def test_cold_user_gets_a_full_list_from_fallback(engine_factory: EngineFactory) -> None:
    engine = engine_factory()
    engine.refresh_indexes(T0)
    ranked = engine.recommend(UserState("cold"), T0)
    ids = _ids(ranked)
    assert len(ids) == engine.params.list_size == 20
    assert len(set(ids)) == len(ids)
    assert all(i in engine.models.catalog for i in ids)
    assert all(r.reason for r in ranked)


def test_cold_user_sees_trending_first(engine_factory: EngineFactory) -> None:
    engine = engine_factory()
    for k in range(5):
        feed(engine.models, UserState(f"o{k}"), f"o{k}-1", "com-3", T0 + k)
    for k in range(2):
        feed(engine.models, UserState(f"p{k}"), f"p{k}-1", "hor-7", T0 + k)
    engine.refresh_indexes(T0 + 10)
    assert engine.trending()[:2] == ["com-3", "hor-7"]
    ranked = engine.recommend(UserState("cold"), T0 + 10)
    assert _ids(ranked)[:2] == ["com-3", "hor-7"]
    assert len(ranked) == 20
    assert ranked[0].reason.startswith("trending")


def test_excluded_items_never_appear(engine_factory: EngineFactory) -> None:
    engine = engine_factory()
    for k in range(4):  # make excluded items attractive: trending and co-occurring
        state = UserState(f"o{k}")
        feed(engine.models, state, f"o{k}-1", "dra-0", T0 + k)
        feed(engine.models, state, f"o{k}-2", "com-0", T0 + k)
    engine.refresh_indexes(T0 + 10)
    user = UserState("u")
    feed(engine.models, user, "u-1", "dra-0", T0 + 5)
    excluded = {item_id(c, k) for c in CATEGORIES[:3] for k in range(10)}
    user.excluded.update({i: T0 for i in excluded})
    ranked = engine.recommend(user, T0 + 10)
    ids = _ids(ranked)
    assert ids, "documentary items are still available"
    assert not set(ids) & set(user.excluded)
    assert set(ids) <= {item_id("Documentary", k) for k in range(10)}


def test_everything_excluded_gives_an_empty_list(engine_factory: EngineFactory) -> None:
    engine = engine_factory()
    engine.refresh_indexes(T0)
    user = UserState("u")
    user.excluded = dict.fromkeys(engine.models.catalog.ids, T0)
    assert engine.recommend(user, T0) == []


def test_category_cap_respected(engine_factory: EngineFactory) -> None:
    engine = engine_factory(category_cap=3, list_size=12)
    engine.refresh_indexes(T0)
    fan = UserState("fan")
    fan.affinity = {"Drama": 5.0}  # wants nothing but drama
    for state in (UserState("cold"), fan):
        ranked = engine.recommend(state, T0)
        counts = Counter(category_of(engine, i) for i in _ids(ranked))
        assert len(ranked) == 12
        assert set(counts.values()) == {3}, counts


def test_list_size_override(engine_factory: EngineFactory) -> None:
    engine = engine_factory()
    engine.refresh_indexes(T0)
    assert len(engine.recommend(UserState("u"), T0, n=5)) == 5


def test_co_occurring_items_of_other_users_because_you_watched(
    engine_factory: EngineFactory,
) -> None:
    engine = engine_factory()
    for k in range(5):
        other = UserState(f"o{k}")
        feed(engine.models, other, f"o{k}-1", "dra-0", T0 + 1_000 * k)
        feed(engine.models, other, f"o{k}-2", "com-5" if k < 3 else "hor-2", T0 + 1_000 * k + 500)
    user = UserState("u")
    feed(engine.models, user, "u-1", "dra-0", T0 + 10_000)
    engine.refresh_indexes(T0 + 10_000)
    ranked = engine.recommend(user, T0 + 10_000)
    by_id = {r.item_id: r for r in ranked}
    assert _ids(ranked)[:2] == ["com-5", "hor-2"]
    for item in ("com-5", "hor-2"):
        assert by_id[item].reason == "because you watched Drama 0"
    # without personalization the same user gets no collaborative reasons
    plain = engine.recommend(user, T0 + 10_000, personalized=False)
    assert not any(r.reason.startswith("because you watched") for r in plain)


def _clicked_documentary(engine_factory: EngineFactory) -> tuple[Recommender, UserState]:
    """Others watched doc-1 then hor-4; the user clicked doc-1."""
    engine = engine_factory()
    for k in range(3):
        other = UserState(f"o{k}")
        feed(engine.models, other, f"o{k}-1", "doc-1", T0 + k)
        feed(engine.models, other, f"o{k}-2", "hor-4", T0 + k + 1)
    user = UserState("u")
    feed(engine.models, user, "u-1", "doc-1", T0 + 100, kind="click", watch_seconds=None)
    return engine, user


def test_clicked_anchor_is_named_as_clicked(engine_factory: EngineFactory) -> None:
    engine, user = _clicked_documentary(engine_factory)
    engine.refresh_indexes(T0 + 100)
    ranked = engine.recommend(user, T0 + 100)
    assert ranked[0].item_id == "hor-4"
    assert ranked[0].reason == "because you clicked Documentary 1"


def test_a_clicked_then_skipped_anchor_is_still_named_by_its_click(
    engine_factory: EngineFactory,
) -> None:
    """The reason names the interaction that made the item a positive, not a later skip.

    Seen in the demo: a user clicked an item, skipped it at 0 %, and the list said "because you
    watched" it; the verb came from the item's latest interaction of any kind.
    """
    engine, user = _clicked_documentary(engine_factory)
    feed(engine.models, user, "u-2", "doc-1", T0 + 101, kind="skip", watch_seconds=0.0)
    engine.refresh_indexes(T0 + 101)
    ranked = engine.recommend(user, T0 + 101)
    reasons = {r.reason for r in ranked if "Documentary 1" in r.reason}
    assert reasons and "because you watched Documentary 1" not in reasons


def test_category_affinity_ranks_first_among_cold_candidates(
    engine_factory: EngineFactory,
) -> None:
    engine = engine_factory()
    user = UserState("u")
    feed(engine.models, user, "u-1", "hor-0", T0)  # no one else: no co-occurrence to use
    engine.refresh_indexes(T0)
    ranked = engine.recommend(user, T0)
    cap = engine.params.category_cap
    assert [category_of(engine, i) for i in _ids(ranked)[:cap]] == ["Horror"] * cap
    assert {r.reason for r in ranked[:cap]} == {"because you like Horror"}
    assert "hor-0" not in _ids(ranked)
    assert len(ranked) == engine.params.list_size


def test_disliked_category_ranks_after_neutral_ones(engine_factory: EngineFactory) -> None:
    engine = engine_factory(list_size=40, category_cap=10)
    user = UserState("u")
    for k in range(3):
        feed(engine.models, user, f"u-{k}", f"com-{k}", T0 + k, kind="skip", watch_seconds=1.0)
    engine.refresh_indexes(T0 + 10)
    cats = [category_of(engine, i) for i in _ids(engine.recommend(user, T0 + 10))]
    assert cats[-7:] == ["Comedy"] * 7
    assert "Comedy" not in cats[:-7]


def _declaring(user_id: str, *categories: str, n_events: int = 0) -> UserState:
    state = UserState(user_id)
    control = Control(control_id="c", type="declare_interests", user_id=user_id, ts=T0,
                      categories=categories)  # fmt: skip
    apply_control(state.controls, control, n_events=n_events)
    return state


def test_declared_categories_lead_a_cold_users_list_even_without_statistics(
    engine_factory: EngineFactory,
) -> None:
    engine = engine_factory()
    for k in range(5):  # comedy is popular; nobody has watched horror yet
        feed(engine.models, UserState(f"o{k}"), f"o{k}-1", f"com-{k}", T0 + k)
    engine.refresh_indexes(T0 + 10)
    ranked = engine.recommend(_declaring("u", "Horror"), T0 + 10)
    cap = engine.params.category_cap
    assert [category_of(engine, i) for i in _ids(ranked)[:cap]] == ["Horror"] * cap
    assert {r.reason for r in ranked[:cap]} == {"you said you like Horror"}
    # without the declaration the same user sees the popular comedy first
    assert category_of(engine, _ids(engine.recommend(UserState("u"), T0 + 10))[0]) == "Comedy"


def test_declared_prior_multiplies_evidence_once_the_user_has_behaviour(
    engine_factory: EngineFactory,
) -> None:
    engine = engine_factory()
    for k in range(6):  # dra-0 co-occurs strongly with com-5, weakly with hor-2
        other = UserState(f"o{k}")
        feed(engine.models, other, f"o{k}-1", "dra-0", T0 + 1_000 * k)
        feed(engine.models, other, f"o{k}-2", "com-5" if k < 4 else "hor-2", T0 + 1_000 * k + 1)
    engine.refresh_indexes(T0 + 10_000)

    def top_two(n_events: int, *declared: str) -> list[str]:
        user = _declaring("u", *declared, n_events=0)
        feed(engine.models, user, "u-1", "dra-0", T0 + 10_000)
        user.n_click = n_events - 1  # events since the declaration (only the count matters)
        return _ids(engine.recommend(user, T0 + 10_000))[:2]

    assert top_two(1) == ["com-5", "hor-2"]
    # hor-2 has about half com-5's evidence; a fresh Horror declaration (x 2.7) lifts it...
    assert top_two(1, "Horror") == ["hor-2", "com-5"]
    # ...a declared category nobody watched cannot outrank real evidence...
    assert top_two(1, "Documentary") == ["com-5", "hor-2"]
    # ...and behaviour takes over: 45 events later the prior adds a fifth, not enough
    assert top_two(45, "Horror") == ["com-5", "hor-2"]
