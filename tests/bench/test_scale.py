"""The scale benchmark's traffic follows the settings under test (issue #16, shipped defaults).

``bench/scale.py`` derives a record's context length and a user's remembered history from
the variant it measures; these check that the shape changes only what a record carries and
what a user remembers, never the draws (the scale profile's stream stays reproducible).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import scale
from scale_traffic import CONTEXT, HISTORY, Traffic

from pipeline.config import Settings
from pipeline.model.models import ModelParams


def _draws(t: Traffic, n: int) -> list[tuple[Any, ...]]:
    return [(e["user"], e["item_id"], e["kind"], e["weight"]) for e in t.next_batch(n)]


def _digest(t: Traffic, n: int) -> str:
    h = hashlib.sha256()
    for e in t.next_batch(n):
        h.update(json.dumps(e, sort_keys=True).encode())
    return h.hexdigest()


def test_the_scale_profile_is_the_traffic_default() -> None:
    assert (CONTEXT, HISTORY) == (20, 50)
    assert scale.SCALE_TRAFFIC == {"context": CONTEXT, "history": HISTORY}
    assert scale.SCALE_PROFILE["learn_context"] == CONTEXT
    explicit = Traffic(n_items=500, n_users=50, seed=3, context=CONTEXT, history=HISTORY)
    assert _digest(Traffic(n_items=500, n_users=50, seed=3), 3_000) == _digest(explicit, 3_000)


def test_context_and_history_follow_the_settings_and_leave_the_draws_alone() -> None:
    short = Traffic(n_items=500, n_users=20, seed=5)
    long = Traffic(n_items=500, n_users=20, seed=5, context=100, history=200)
    assert _draws(short, 4_000) == _draws(long, 4_000)  # 200 events a user on average
    assert max(len(short.context(u)) for u in range(20)) == 20
    assert max(len(long.context(u)) for u in range(20)) == 100
    assert max(len(long.history(u)) for u in range(20)) == 200
    assert len(short.history_docs(0)) == 50


def test_a_context_longer_than_the_history_is_refused() -> None:
    with pytest.raises(ValueError, match="context"):
        Traffic(n_items=10, n_users=2, context=30, history=20)


def test_variants_measure_their_own_settings() -> None:
    defaults = scale.traffic_shape(scale.VARIANTS["defaults"](scale.ROOT).options, ModelParams())
    assert defaults == {
        "context": ModelParams().learn_context,
        "history": Settings.model_fields["history_size"].default,
    }
    after = scale.VARIANTS["after"](scale.ROOT).options
    assert scale.traffic_shape(after, ModelParams(**after["model"])) == scale.SCALE_TRAFFIC
    given = {"traffic": {"context": 7, "history": 9}}
    assert scale.traffic_shape(given, ModelParams()) == {"context": 7, "history": 9}
