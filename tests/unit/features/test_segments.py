"""Segments follow the user's state."""

from __future__ import annotations

from pipeline.features.segments import changes, segments_of
from pipeline.features.state import UserContext, UserState
from schemas.control import Control


def control(**fields: object) -> Control:
    base = {"control_id": "c", "user_id": "u", "ts": 1}
    return Control.model_validate({**base, **fields})


def test_segments_follow_the_state() -> None:
    state = UserState("u", n_watch=7, affinity={"Drama": 2.0, "News": -1.0})
    state.context = UserContext("en-GB", "tv", None)
    assert segments_of(state) == {
        "lifecycle": "active", "category": "Drama", "locale": "en-GB", "device": "tv",
    }  # fmt: skip
    left, joined = changes({"lifecycle": "new", "locale": "en-GB"}, segments_of(state))
    assert left == [("lifecycle", "new")]
    assert ("lifecycle", "active") in joined and ("locale", "en-GB") not in joined
