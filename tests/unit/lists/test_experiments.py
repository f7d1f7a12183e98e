"""Experiments: declaration and assignment (outcomes and the report have their own tests)."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.lists.experiments import assign, parse_experiments, variant_params
from pipeline.lists.params import ListParams
from schemas.control import Control


def control(**fields: object) -> Control:
    base = {"control_id": "c", "user_id": "u", "ts": 1}
    return Control.model_validate({**base, **fields})


EXPERIMENTS = parse_experiments(
    {
        "experiments": [
            {
                "name": "perso",
                "traffic": 0.8,
                "variants": [
                    {"name": "control", "share": 0.5, "changes": {"personalized": False}},
                    {"name": "treatment", "share": 0.5, "changes": {"category_cap": 3}},
                ],
            }
        ]
    }
)


def test_assignment_is_deterministic_and_follows_the_shares() -> None:
    users = [f"user-{n}" for n in range(20_000)]
    arms = [assign(EXPERIMENTS, u) for u in users]
    assert arms == [assign(EXPERIMENTS, u) for u in users]
    counts = Counter(a[1].name if a else None for a in arms)
    assert counts[None] / len(users) == pytest.approx(0.2, abs=0.015)
    assert counts["control"] / len(users) == pytest.approx(0.4, abs=0.015)
    assert counts["treatment"] / len(users) == pytest.approx(0.4, abs=0.015)


def test_variant_changes_become_params() -> None:
    control_arm, treatment = EXPERIMENTS[0].variants
    params, personalized = variant_params(ListParams(), control_arm)
    assert personalized is False and params == ListParams()
    params, personalized = variant_params(ListParams(), treatment)
    assert personalized is True and params.category_cap == 3


@pytest.mark.parametrize(
    "doc",
    [
        {"experiments": [{"name": "x", "variants": [{"name": "a", "share": 1.0}]}]},
        {"experiments": [{"name": "x", "variants": [{"name": "a", "share": 0.5},
                                                     {"name": "b", "share": 0.4}]}]},
        {"experiments": [{"name": "x", "variants": [{"name": "a", "share": 0.5},
                                                     {"name": "b", "share": 0.5,
                                                      "changes": {"bogus": 1}}]}]},
    ],
)  # fmt: skip
def test_bad_declarations_are_refused(doc: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="experiment"):
        parse_experiments(doc)


def test_an_arm_may_switch_the_learning_to_rank_layer_off_or_remix_it() -> None:
    """README promises arms over ``rerank_depth`` / ``rerank_mix`` (A/B of the layer)."""
    declared = parse_experiments(
        {"experiments": [{"name": "ltr", "variants": [
            {"name": "layer", "share": 0.5, "changes": {"rerank_mix": 0.3}},
            {"name": "blend", "share": 0.5, "changes": {"rerank_depth": 0}}]}]}
    )  # fmt: skip
    layer, blend = (variant_params(ListParams(), v)[0] for v in declared[0].variants)
    assert (layer.rerank_mix, layer.rerank_depth) == (0.3, ListParams().rerank_depth)
    assert blend.rerank_depth == 0
