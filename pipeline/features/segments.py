"""User segments: contextual (locale, device, surface) and behavioural (lifecycle, taste).

=============  ============================================================================
dimension      value
=============  ============================================================================
lifecycle      ``new`` (fewer than ``NEW_USER_EVENTS`` events), ``active``, ``dormant`` (no
               event for ``dormant_after_seconds``; set by a periodic sweep, which also
               takes dormant users out of the other dimensions)
category       the user's dominant category (highest positive affinity), ``none`` without
locale         last ``context.locale`` seen
device         last ``context.device`` seen
surface        last ``context.surface`` seen
=============  ============================================================================

Each user's values are written to the features hash as ``segment_<dimension>``; membership is
kept in Redis sets ``recloop:segment:<dimension>:<value>`` (changed only when a value
changes, ``pipeline.stores.segments``), so sizes are ``SCARD``s. Trending is kept per
locale and device segment and serves cold-start lists.
"""

from __future__ import annotations

from pipeline.features.state import UserState

NEW_USER_EVENTS = 5
DIMENSIONS = ("lifecycle", "category", "locale", "device", "surface")


def segments_of(state: UserState) -> dict[str, str]:
    """A user's segment values (dimensions without a value are left out).

    >>> segments_of(UserState("u", n_click=1))
    {'lifecycle': 'new', 'category': 'none'}
    """
    top = state.top_categories(1)
    out = {
        "lifecycle": "new" if state.n_events < NEW_USER_EVENTS else "active",
        "category": top[0][0] if top else "none",
    }
    for name in ("locale", "device", "surface"):
        value = getattr(state.context, name)
        if value:
            out[name] = value
    return out


def changes(
    before: dict[str, str], after: dict[str, str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(left, joined)`` memberships as ``(dimension, value)`` pairs.

    >>> changes({"lifecycle": "new"}, {"lifecycle": "active"})
    ([('lifecycle', 'new')], [('lifecycle', 'active')])
    """
    left = [(d, v) for d, v in before.items() if after.get(d) != v]
    joined = [(d, v) for d, v in after.items() if before.get(d) != v]
    return left, joined
