"""Building one user's published list: personalisation switches, experiment arm, encoding.

Pure apart from reading the shared models: ``pipeline.publish`` decides *when* lists are
built (coalescing, timers) and the worker does the I/O; this decides *what* a list is. The
same document goes to the user's ``recs`` key and to the recommendations topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.features.state import UserState
from pipeline.lists.experiments import Experiment, assign, variant_params
from pipeline.lists.recommend import Recommender
from schemas.validation import encode_recommendation


@dataclass(frozen=True, slots=True)
class Trigger:
    """The event a list reflects (``None`` fields for a background refresh).

    It is part of what a list says about itself (``trigger_event_id``, ``trigger_ts`` in
    recommendation v1), and what an owed refresh must reflect (``pipeline.stores.owed``).
    ``received_ms`` is when a worker received the event (its batch's clock): freshness is
    measured from it, because the event's own ``ts`` may be days old (a device that was
    offline) or ahead (a skewed clock) without the pipeline being slow.
    """

    event_id: str | None
    ts: int | None
    received_ms: int | None = None


@dataclass(frozen=True, slots=True)
class BuiltList:
    """A user's encoded list, the trigger it reflects and, in an experiment, its exposure."""

    user_id: str
    doc: bytes
    trigger: Trigger
    # (items shown, experiment, variant): what outcomes are attributed against
    exposure: tuple[frozenset[str], str, str] | None
    generated_ms: int = 0  # when the list was built (its ``generated_ts``)
    items: tuple[str, ...] = ()  # the item ids of the list (what the holders index records)


def build_list(
    recommender: Recommender,
    experiments: tuple[Experiment, ...],
    state: UserState,
    trigger: Trigger,
    *,
    now_ms: int,
    version: str,
) -> BuiltList:
    """The recommendation v1 document for ``state`` now.

    A user is personalised once they have behaviour or declarations, unless they opted out
    or their experiment arm is the non-personalised control.
    """
    personalized = state.controls.personalization and (
        state.n_events > 0 or bool(state.controls.declared)
    )
    params, arm = None, assign(experiments, state.user_id)
    if arm is not None:
        params, arm_personalizes = variant_params(recommender.params, arm[1])
        personalized = personalized and arm_personalizes
    ranked = recommender.recommend(state, now_ms, personalized=personalized, params=params)
    doc = encode_recommendation(
        state.user_id,
        [(r.item_id, r.score, r.reason) for r in ranked],
        generated_ts=now_ms,
        trigger_event_id=trigger.event_id,
        trigger_ts=trigger.ts,
        model_version=version,
        personalized=personalized,
        experiment=arm[0].name if arm else None,
        variant=arm[1].name if arm else None,
    )
    exposure = None
    if arm is not None:
        exposure = (frozenset(r.item_id for r in ranked), arm[0].name, arm[1].name)
    return BuiltList(
        state.user_id, doc, trigger, exposure, now_ms, tuple(r.item_id for r in ranked)
    )
