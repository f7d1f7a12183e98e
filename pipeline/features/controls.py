"""A user's controls (mutes, not-interested, declared interests, opt-out): pure data and rules.

Controls are what people *tell* recloop, beside what they do. They always win: ``allows``
is applied to every candidate from every source, after ranking, so no model weight can bring
back a muted category. Declared interests are a prior that fades as behaviour accumulates:

    prior(n) = declared_weight * halfway / (halfway + n)

where ``n`` is the number of events applied since the declaration. Ranking multiplies the
score of items in a declared category by ``1 + prior(n)`` (``Engine._declared_boost``):
after ``halfway`` events the declaration counts half, and behaviour (co-occurrence,
observed affinities) decides.
Stored in Redis as the hash ``recloop:user:{USER_ID}:controls`` (``pipeline.stores.codec``).

Bounded state: a user keeps at most ``MUTES_KEEP`` mutes of each kind (categories, creators,
items) and ``NOT_INTERESTED_KEEP`` not-interested items; beyond that the oldest is dropped
(muting or marking again makes an entry the newest). So the hash, written whole on every
control, stays near 330 KB at worst (ASCII ids and reasons at their length limits in
``schemas.limits``) and a few KB with ordinary ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.control import Control, ControlType

MUTES_KEEP = 100
"""Mutes kept per kind (categories, creators, items); the oldest is dropped beyond it."""

NOT_INTERESTED_KEEP = 500
"""Not-interested items kept (with their reasons); the oldest is dropped beyond it."""

Muted = dict[str, None]
"""Muted values, oldest first (a dict: an ordered set, so the oldest can be dropped)."""


@dataclass(slots=True)
class UserControls:
    """Everything a user told recloop."""

    muted_categories: Muted = field(default_factory=dict)
    muted_creators: Muted = field(default_factory=dict)
    muted_items: Muted = field(default_factory=dict)
    not_interested: dict[str, str | None] = field(default_factory=dict)
    declared: tuple[str, ...] = ()
    declared_at_events: int = 0  # the user's n_events when they declared
    personalization: bool = True
    updated_ts: int = 0

    @property
    def empty(self) -> bool:
        """True when nothing filters or biases the list."""
        return not (
            self.muted_categories
            or self.muted_creators
            or self.muted_items
            or self.not_interested
            or self.declared
            or not self.personalization
        )

    def allows(self, item_id: str, categories: tuple[str, ...], creator_id: str | None) -> bool:
        """Whether an item may appear in the user's list at all.

        >>> UserControls(muted_categories={"News": None}).allows("i1", ("News", "Sports"), None)
        False
        """
        if item_id in self.muted_items or item_id in self.not_interested:
            return False
        if creator_id is not None and creator_id in self.muted_creators:
            return False
        return not any(c in self.muted_categories for c in categories)

    def prior(self, n_events: int, *, weight: float, halfway: float) -> float:
        """Weight of the declared interests after ``n_events`` behavioural events.

        >>> UserControls(declared=("A",)).prior(5, weight=1.0, halfway=5.0)
        0.5
        """
        if not self.declared:
            return 0.0
        since = max(0, n_events - self.declared_at_events)
        return weight * halfway / (halfway + since)


def apply_control(controls: UserControls, control: Control, *, n_events: int) -> None:
    """Fold one control into ``controls`` (``forget`` is handled by the caller)."""
    kind = control.type
    if kind in (ControlType.MUTE, ControlType.UNMUTE):
        target: Muted
        if control.category is not None:
            target, value = controls.muted_categories, control.category
        elif control.creator_id is not None:
            target, value = controls.muted_creators, control.creator_id
        else:
            target, value = controls.muted_items, str(control.item_id)
        target.pop(value, None)
        if kind is ControlType.MUTE:
            target[value] = None  # (re)inserted: the newest
            keep_newest(target, MUTES_KEEP)
        elif control.item_id is not None:
            controls.not_interested.pop(control.item_id, None)
    elif kind is ControlType.NOT_INTERESTED:
        item_id = str(control.item_id)
        controls.not_interested.pop(item_id, None)
        controls.not_interested[item_id] = control.reason
        keep_newest(controls.not_interested, NOT_INTERESTED_KEEP)
    elif kind is ControlType.DECLARE_INTERESTS:
        controls.declared = tuple(dict.fromkeys(control.categories or ()))
        controls.declared_at_events = n_events
    elif kind is ControlType.PERSONALIZATION_OFF:
        controls.personalization = False
    elif kind is ControlType.PERSONALIZATION_ON:
        controls.personalization = True
    controls.updated_ts = max(controls.updated_ts, control.ts)


def keep_newest(ordered: dict[str, Any], size: int) -> None:
    """Drop the oldest (first inserted) entries of ``ordered`` beyond ``size``.

    >>> d = dict.fromkeys("abc")
    >>> keep_newest(d, 2)
    >>> list(d)
    ['b', 'c']
    """
    while len(ordered) > size:
        del ordered[next(iter(ordered))]
