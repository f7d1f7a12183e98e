"""What one event adds to its user's experiment arm: counters and exact sums of squares (pure).

The report (``pipeline.lists.experiment_report``) analyses users, not actions: for each
metric it needs, per arm, the sums over users of the numerator ``x_u``, the denominator
``y_u``, ``x_u**2``, ``y_u**2`` and ``x_u * y_u`` (``pipeline.lists.experiment_stats``).
Those sums are kept up to date event by event. The user's own values live with the user
(``ArmState.values``, stored in ``recloop:user:{USER_ID}:experiment``), so each event's
increments of the squares and products are exact: an event that moves ``x`` from ``a`` to
``a + d`` adds ``2 a d + d**2`` to the sum of squares, and the user's values before the
event are known.

Per user and arm (``VALUES``): ``actions`` (events within the attribution window of the
latest list), ``hits`` (actions on an item of that list), ``clicks``, ``watches``,
``completions`` and ``skips`` (hits of each kind), and ``events`` (every event from the
first exposure on). Return flags (``returned:<seconds>``) are set once, by the first event
at least that many seconds after the first exposure.

Everything is decided from the user's stored state and the event (its own ``ts``, never the
processing time), so a worker that re-applies an event after a crash decides the same way
the first one did.

>>> from pipeline.features.state import ArmState
>>> arm = ArmState("exp", "b", first_ms=0, shown=frozenset({"i1"}), shown_ms=0)
>>> first = event_outcome(arm, attribution_ms=60_000, windows=(), event_type="click",
...                       item_id="i1", ts=1_000, completed=False)
>>> first["hits"], first["sq:hits"], first["xy:hits:actions"]
(1, 1, 1)
>>> second = event_outcome(arm, attribution_ms=60_000, windows=(), event_type="click",
...                        item_id="i1", ts=2_000, completed=False)
>>> second["sq:hits"], second["xy:hits:actions"]  # (2**2 - 1**2), (2*2 - 1*1)
(3, 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from pipeline.features.state import ArmState, UserState

VALUES = ("actions", "hits", "clicks", "watches", "completions", "skips", "events")
"""A user's outcome values in their arm (and the arm's plain counters of the same name)."""
RATIOS = {
    "click_through": ("hits", "actions"),
    "completion_rate": ("completions", "watches"),
    "skip_rate": ("skips", "hits"),
}
"""Ratio metrics over users: ``sum x_u / sum y_u`` with ``(x, y)`` value names."""
MEANS = {"events_per_user": "events"}
"""Per-user means: ``sum x_u / users`` (``y_u = 1`` for every exposed user)."""
SQUARED = ("actions", "hits", "watches", "completions", "skips", "events")
"""Values whose sum of squares the arm keeps (every numerator and denominator above)."""
EXPOSURES = "exposures"
"""The arm's count of lists shown (the user's own count is the ``lists`` field)."""


def sq_field(value: str) -> str:
    """Field of the arm hash holding ``sum_u value_u ** 2``."""
    return f"sq:{value}"


def xy_field(x: str, y: str) -> str:
    """Field of the arm hash holding ``sum_u x_u * y_u``."""
    return f"xy:{x}:{y}"


def returned_field(seconds: int) -> str:
    """Field counting users who came back ``seconds`` after first exposure (a per-user flag)."""
    return f"returned:{seconds}"


def note_exposure(state: UserState, exposure: tuple[frozenset[str], str, str], at_ms: int) -> None:
    """The user is being shown a list in an arm, generated at ``at_ms``: it gets the credit.

    A user seen in another arm before (the declaration changed) starts afresh in this one.
    """
    items, experiment, variant = exposure
    arm = state.arm
    if arm is None or (arm.experiment, arm.variant) != (experiment, variant):
        state.arm = ArmState(experiment, variant, first_ms=at_ms, shown=items, shown_ms=at_ms)
    else:
        arm.shown, arm.shown_ms = items, at_ms


def outcome(event_type: str, item_in_list: bool, completed: bool) -> dict[str, int]:
    """Value increments of one attributed action.

    >>> outcome("watch", True, True)
    {'actions': 1, 'hits': 1, 'watches': 1, 'completions': 1}
    """
    out = {"actions": 1}
    if item_in_list:
        out["hits"] = 1
        if event_type == "click":
            out["clicks"] = 1
        elif event_type == "watch":
            out["watches"] = 1
            if completed:
                out["completions"] = 1
        else:
            out["skips"] = 1
    return out


def event_outcome(
    arm: ArmState | None,
    *,
    attribution_ms: int,
    windows: Sequence[int],
    event_type: str,
    item_id: str,
    ts: int,
    completed: bool,
) -> dict[str, int]:
    """Fold one applied event into the user's arm; the increments of the arm's hash.

    Nothing for a user never shown a list in an experiment. An *action* is an event stamped
    at most ``attribution_ms`` after the latest list was generated (by event time).
    """
    if arm is None:
        return {}
    d = {"events": 1}
    if ts - arm.shown_ms <= attribution_ms:
        d.update(outcome(event_type, item_id in arm.shown, completed))
    old = arm.values
    inc = dict(d)
    for value in SQUARED:
        step = d.get(value, 0)
        if step:
            inc[sq_field(value)] = 2 * old.get(value, 0) * step + step * step
    for x, y in RATIOS.values():
        dx, dy = d.get(x, 0), d.get(y, 0)
        product = old.get(x, 0) * dy + old.get(y, 0) * dx + dx * dy
        if product:
            inc[xy_field(x, y)] = product
    arm.values = {v: old.get(v, 0) + d.get(v, 0) for v in VALUES if old.get(v, 0) + d.get(v, 0)}
    for seconds in windows:
        if seconds not in arm.returned and ts >= arm.first_ms + seconds * 1000:
            arm.returned.add(seconds)
            inc[returned_field(seconds)] = 1
    arm.changed = True
    return inc


def withdrawal(arm: ArmState, lists: int) -> dict[str, int]:
    """The increments that take a user's whole contribution out of their arm's sums.

    What a forget subtracts: the sums are over users, so one user's part is exactly their
    values, their squares and products, their return flags and their lists.

    >>> arm = ArmState("e", "a", 0, values={"actions": 3, "hits": 2, "events": 4})
    >>> out = withdrawal(arm, lists=5)
    >>> out["hits"], out["sq:hits"], out["xy:hits:actions"], out["exposures"]
    (-2, -4, -6, -5)
    """
    v = arm.values
    out = {name: -v[name] for name in VALUES if v.get(name)}
    for name in SQUARED:
        if v.get(name):
            out[sq_field(name)] = -v[name] * v[name]
    for x, y in RATIOS.values():
        if v.get(x, 0) * v.get(y, 0):
            out[xy_field(x, y)] = -v[x] * v[y]
    for seconds in arm.returned:
        out[returned_field(seconds)] = -1
    if lists:
        out[EXPOSURES] = -lists
    return out


# ------------------------------------------------------------------ the user's stored arm
def arm_fields(arm: ArmState) -> dict[str, str]:
    """What a user write stores of the arm: its name, first exposure, values, return flags.

    The latest list shown (``shown``, ``shown_ms``) and the list count (``lists``) are
    written with the list itself (``write_list.lua``).
    """
    fields = {"experiment": arm.experiment, "variant": arm.variant, "first_ms": str(arm.first_ms)}
    for name, value in arm.values.items():
        fields[name] = str(value)
    for seconds in sorted(arm.returned):
        fields[returned_field(seconds)] = "1"
    return fields


def shown_json(items: frozenset[str]) -> bytes:
    """The ``shown`` field: the items of the latest list, sorted (JSON).

    >>> shown_json(frozenset({"b", "a"}))
    b'["a","b"]'
    """
    return orjson.dumps(sorted(items))


def arm_from_fields(fields: Mapping[str, str]) -> tuple[ArmState | None, int]:
    """The stored arm and its list count (``None, 0`` when the user has no arm).

    >>> arm, lists = arm_from_fields({"experiment": "e", "variant": "a", "first_ms": "5",
    ...     "shown": '["i1"]', "shown_ms": "9", "hits": "2", "returned:60": "1", "lists": "3"})
    >>> arm.values, sorted(arm.returned), arm.shown, lists
    ({'hits': 2}, [60], frozenset({'i1'}), 3)
    """
    if "experiment" not in fields or "variant" not in fields:
        return None, 0
    arm = ArmState(
        fields["experiment"],
        fields["variant"],
        first_ms=int(fields.get("first_ms", 0)),
        shown=frozenset(orjson.loads(fields.get("shown", "[]"))),
        shown_ms=int(fields.get("shown_ms", 0)),
        values={name: int(fields[name]) for name in VALUES if name in fields},
        returned={int(name.partition(":")[2]) for name in fields if name.startswith("returned:")},
    )
    return arm, int(fields.get("lists", 0))
