"""A seeded synthetic world of items and users that emits event v1 and item v1 dicts.

Demos and benchmarks need traffic whose ground truth is known: a recommender that learns
should end up ranking each user's favourite categories first, and ``World.taste`` says what
those are. The behaviour model is deliberately simple but has the shapes that matter to the
pipeline:

- **popularity** follows Zipf (weight ``1 / rank``), so a few items dominate and
  most-popular is a real baseline to beat;
- **taste** is a Dirichlet draw concentrated on 1-3 favourite categories; the item a user
  picks mixes taste, global popularity and the category of the session so far;
- **sessions** interleave: several users are active at once, each for a few events;
- **reactions** depend on interest: a matching item is usually clicked and then watched to a
  high completion, a non-matching one is usually skipped after a few seconds;
- **new users** start a share of sessions, so cold start is always present.

Everything is pure and deterministic for a given seed: no clock, no I/O. Three independent
random streams (catalogue, users, traffic) are derived from the seed so that, e.g., asking for
more users does not change the catalogue, and a user's taste does not depend on the traffic.

>>> world = World(seed=7, n_users=50, n_items=40)
>>> event = world.next_event(1_700_000_000_000)
>>> event["ts"], event["type"] in {"click", "skip"}
(1700000000000, True)
>>> abs(sum(world.taste(event["user_id"]).values()) - 1.0) < 1e-9
True
"""

from __future__ import annotations

import math
import random
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pipeline.tooling.churn import ON_AIR, RELEASE, CatalogChange, Churn, ChurnSchedule
from pipeline.tooling.returns import TRIES, Returns
from pipeline.tooling.sim_catalog import (
    CATEGORIES,
    DEFAULT_EPOCH_MS,
    Pools,
    SimItem,
    build_catalog,
)
from schemas.events import SCHEMA_VERSION

__all__ = ["CATEGORIES", "DEFAULT_EPOCH_MS", "Churn", "SimItem", "SimUser", "World", "events_due"]

_LOCALES: Final = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP", "hi-IN")
_LOCALE_WEIGHTS: Final = (30, 10, 10, 10, 10, 12, 8, 10)
_DEVICES: Final = ("mobile", "tv", "web", "tablet")
_DEVICE_WEIGHTS: Final = (55, 20, 20, 5)


@dataclass(frozen=True, slots=True)
class SimUser:
    """A user's hidden profile: category taste (sums to 1), locale and device."""

    user_id: str
    taste: dict[str, float]
    locale: str
    device: str


@dataclass(slots=True)
class _Session:
    user: SimUser
    remaining: int
    category: str | None = None
    pending: SimItem | None = None  # clicked, watch not emitted yet
    pending_context: dict[str, Any] | None = None
    interest: float = 0.0  # summed over the session's choices (its satisfaction)
    choices: int = 0


class World:
    """Catalogue, users and a traffic generator, all derived from ``seed``.

    Parameters
    ----------
    seed
        Seeds every random stream; equal seeds and parameters give equal events.
    n_users
        Users known at the start; new users join as traffic flows.
    n_items
        Catalogue size.
    new_user_share
        Probability that a new session comes from a never-seen user.
    mean_session_length
        Mean number of item choices per session (geometric).
    max_open_sessions
        Sessions interleaved at once; bounds the world's memory.
    epoch_ms
        Reference time: items are published in the year before it.
    away_seconds
        Users who end a session stay away for a while, shorter the better the session
        matched their taste (``pipeline.tooling.returns``); 0 (the default): no one is ever
        away, as before returns were modelled.
    return_sensitivity
        How much a session's satisfaction changes the time away.
    churn
        Items that come and go during the run (``pipeline.tooling.churn``); the caller
        publishes ``catalog_changes``. Users judge a new item by their taste exactly as an
        old one (no novelty bonus): whatever the new-item slot gains, it gains by showing
        new items that match.
    """

    def __init__(
        self,
        seed: int = 0,
        n_users: int = 1_000,
        n_items: int = 500,
        *,
        new_user_share: float = 0.05,
        mean_session_length: float = 6.0,
        max_open_sessions: int = 64,
        epoch_ms: int = DEFAULT_EPOCH_MS,
        away_seconds: float = 0.0,
        return_sensitivity: float = 3.0,
        churn: Churn | None = None,
    ) -> None:
        if n_users < 0 or n_items < 1 or max_open_sessions < 1 or mean_session_length < 1:
            msg = (
                f"invalid world: n_users={n_users} (>= 0), n_items={n_items} (>= 1), "
                f"max_open_sessions={max_open_sessions} (>= 1), "
                f"mean_session_length={mean_session_length} (>= 1)"
            )
            raise ValueError(msg)
        if not 0.0 <= new_user_share <= 1.0:
            msg = f"new_user_share must be within [0, 1], got {new_user_share}"
            raise ValueError(msg)
        self.seed = seed
        self._returns = Returns(away_seconds, return_sensitivity) if away_seconds > 0 else None
        self._new_user_share = new_user_share
        self._session_end_p = 1.0 / mean_session_length
        self._max_sessions = max_open_sessions
        self._rng = random.Random(f"recloop-sim:traffic:{seed}")
        self._known_users = n_users
        self._user_cache: OrderedDict[int, SimUser] = OrderedDict()
        self._sessions: list[_Session] = []
        self._items = build_catalog(random.Random(f"recloop-sim:catalog:{seed}"), n_items, epoch_ms)
        self._by_id = {item.item_id: item for item in self._items}
        self._pools = Pools(self._items)
        self._schedule: ChurnSchedule | None = None
        self._since: dict[str, int] = {}  # item id -> when it was released or went on air
        if churn is not None and churn.active:
            self._schedule = ChurnSchedule(churn, seed, self._items, epoch_ms)
            self._by_id.update((item.item_id, item) for item in self._schedule.channels)

    # --- ground truth -----------------------------------------------------------------
    @property
    def known_users(self) -> int:
        """Users that exist so far (initial ones plus those who arrived)."""
        return self._known_users

    def items(self) -> list[dict[str, Any]]:
        """The initial catalogue as item v1 dicts, in item id order (live channels last)."""
        channels = self._schedule.channels if self._schedule is not None else []
        return [item.to_v1() for item in self._items + channels]

    def catalog_changes(self, now_ms: int) -> list[CatalogChange]:
        """What changed in the catalogue by ``now_ms`` (none without churn), now applied.

        Users find and choose only items available now; a producer sends each change whose
        ``sends`` is true (``message()``, None being a tombstone).
        """
        if self._schedule is None:
            return []
        changes = self._schedule.due(now_ms)
        for change in changes:
            if change.item is not None and change.kind in (RELEASE, ON_AIR):
                self._by_id[change.item_id] = change.item
                self._pools.add(change.item)
                self._since[change.item_id] = change.ts
            else:
                self._pools.remove(change.item_id)
                if change.item is None:  # retired or expired: gone for good
                    self._by_id.pop(change.item_id, None)
                    self._since.pop(change.item_id, None)
        return changes

    def available_since(self, item_id: str) -> int | None:
        """When the item was released or last went on air during the run (None: before)."""
        return self._since.get(item_id)

    def item(self, item_id: str) -> SimItem:
        """The catalogue entry ``item_id`` (``KeyError`` if unknown)."""
        return self._by_id[item_id]

    def user(self, user_id: str) -> SimUser:
        """The hidden profile of an existing user (``KeyError`` if not known yet)."""
        index = _user_index(user_id)
        if index is None or index >= self._known_users:
            msg = (
                f"unknown simulated user {user_id!r}; known users are u0..u{self._known_users - 1}"
            )
            raise KeyError(msg)
        return self._user(index)

    def taste(self, user_id: str) -> dict[str, float]:
        """Ground-truth category preference of ``user_id`` (sums to 1)."""
        return dict(self.user(user_id).taste)

    def interest(self, user_id: str, item_id: str) -> float:
        """How well an item matches a user, in [0, 1]: what drives skips and completion."""
        return _interest(self.user(user_id), self._by_id[item_id])

    # --- traffic ----------------------------------------------------------------------
    def next_event(
        self,
        now_ms: int,
        recommended: Callable[[str], Sequence[str]] | None = None,
        follow: float = 0.7,
    ) -> dict[str, Any]:
        """The next event v1 of the interleaved sessions, stamped ``ts=now_ms``.

        Closed loop: with ``recommended`` (user id -> the user's current list), a user picks
        from their list with probability ``follow`` (by taste and position, as people
        scan a list top-down but choose what they like), otherwise browses as usual. An
        experiment then has a ground truth: better lists get more completed watches.
        """
        session = self._pick_session(now_ms)
        if session.pending is not None:
            item, context = session.pending, session.pending_context
            session.pending = session.pending_context = None
            event = self._watch(session.user, item, now_ms, context)
        else:
            listed = recommended(session.user.user_id) if recommended is not None else ()
            if listed and self._rng.random() < follow:
                item, category, surface = self._choose_listed(session, listed)
            else:
                item, category, surface = self._choose_item(session)
            context = self._context(session.user, surface)
            session.interest += _interest(session.user, item)
            session.choices += 1
            if self._rng.random() < _skip_probability(_interest(session.user, item)):
                event = self._skip(session.user, item, now_ms, context)
                session.category = None  # a skip ends the run of one category
            else:
                event = self._event("click", session.user, item, now_ms, context)
                session.pending, session.pending_context = item, context
                session.category = category
            session.remaining -= 1
        if session.remaining <= 0 and session.pending is None:
            self._close(session, now_ms)
        return event

    def session(
        self, user_id: str, actions: int, start_ms: int, gap_ms: int = 20_000
    ) -> Iterator[dict[str, Any]]:
        """One user's next ``actions`` choices as events (a click brings its watch).

        For measuring one user at a time (first events of a new user, say) instead of the
        interleaved traffic of ``next_event``.
        """
        session = _Session(user=self.user(user_id), remaining=actions)
        ts = start_ms
        while session.remaining > 0 or session.pending is not None:
            ts += gap_ms
            if session.pending is not None:
                item, context = session.pending, session.pending_context
                session.pending = session.pending_context = None
                yield self._watch(session.user, item, ts, context)
                continue
            item, category, surface = self._choose_item(session)
            context = self._context(session.user, surface)
            session.remaining -= 1
            if self._rng.random() < _skip_probability(_interest(session.user, item)):
                session.category = None
                yield self._skip(session.user, item, ts, context)
            else:
                session.category = category
                session.pending, session.pending_context = item, context
                yield self._event("click", session.user, item, ts, context)

    def events(
        self, n: int, start_ms: int = DEFAULT_EPOCH_MS, rate: float = 100.0
    ) -> Iterator[dict[str, Any]]:
        """``n`` events evenly spaced at ``rate`` events per second from ``start_ms``."""
        if rate <= 0:
            msg = f"rate must be > 0 events/s, got {rate}"
            raise ValueError(msg)
        for i in range(n):
            yield self.next_event(start_ms + int(i * 1_000 / rate))

    # --- internals --------------------------------------------------------------------
    def _user(self, index: int) -> SimUser:
        # Users are derived on demand from (seed, index), so memory does not grow with the
        # number of users who ever arrived; the cache only saves the re-derivation.
        user = self._user_cache.get(index)
        if user is None:
            user = _make_user(random.Random(f"recloop-sim:user:{self.seed}:{index}"), index)
            self._user_cache[index] = user
            if len(self._user_cache) > 65_536:
                self._user_cache.popitem(last=False)
        return user

    def _pick_session(self, now_ms: int) -> _Session:
        rng = self._rng
        full = len(self._sessions) >= self._max_sessions
        if self._sessions and (full or rng.random() < 0.9):
            return rng.choice(self._sessions)
        if self._known_users == 0 or rng.random() < self._new_user_share:
            index = self._new_user()
        else:
            index = self._returning_user(now_ms)
        user_id = f"u{index}"
        for session in self._sessions:  # a user has at most one session open
            if session.user.user_id == user_id:
                return session
        length = 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - self._session_end_p))
        session = _Session(user=self._user(index), remaining=length)
        self._sessions.append(session)
        return session

    def _new_user(self) -> int:
        self._known_users += 1
        return self._known_users - 1

    def _returning_user(self, now_ms: int) -> int:
        """An existing user (activity is skewed: low indices are the heavy users).

        With returns modelled, only a user who is not away may start a session; after a few
        draws of users who are all away, a new user starts it instead.
        """
        for _ in range(TRIES if self._returns is not None else 1):
            index = int(self._known_users * self._rng.random() ** 2)
            if self._returns is None or self._returns.available(index, now_ms):
                return index
        return self._new_user()

    def _close(self, session: _Session, now_ms: int) -> None:
        i = self._sessions.index(session)
        self._sessions[i] = self._sessions[-1]
        self._sessions.pop()
        index = _user_index(session.user.user_id)
        if self._returns is not None and index is not None:
            satisfaction = session.interest / max(1, session.choices)
            self._returns.leave(index, satisfaction=satisfaction, now_ms=now_ms, rng=self._rng)

    def _choose_item(self, session: _Session) -> tuple[SimItem, str, str]:
        rng = self._rng
        if session.category is not None and rng.random() < 0.5:
            category, surface = session.category, "related"
        elif rng.random() < 0.6:
            taste = session.user.taste
            category = rng.choices(list(taste), weights=list(taste.values()))[0]
            surface = "home"
        else:
            item = self._pools.any(rng)
            return item, item.categories[0], "trending"
        found = self._pools.in_category(rng, category)
        if found is None:  # tiny catalogues miss some categories
            item = self._pools.any(rng)
            return item, item.categories[0], surface
        return found, category, surface

    def _choose_listed(self, session: _Session, listed: Sequence[str]) -> tuple[SimItem, str, str]:
        # an item gone from the catalogue (a list not rebuilt yet) cannot be watched
        known = [self._by_id[i] for i in listed[:20] if self._pools.available(i)]
        if not known:
            return self._choose_item(session)
        weights = [
            (0.05 + _interest(session.user, item) ** 2) * 0.9**rank
            for rank, item in enumerate(known)
        ]
        item = self._rng.choices(known, weights=weights)[0]
        return item, item.categories[0], "recommended"

    def _context(self, user: SimUser, surface: str) -> dict[str, Any]:
        position = min(49, int(self._rng.expovariate(0.25)))
        return {"device": user.device, "locale": user.locale, "surface": surface,
                "position": position}  # fmt: skip

    def _event(
        self, kind: str, user: SimUser, item: SimItem, now_ms: int, context: dict[str, Any] | None
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "event_id": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            "type": kind,
            "user_id": user.user_id,
            "item_id": item.item_id,
            "ts": now_ms,
            "duration_seconds": item.duration_seconds,
        }
        if context is not None:
            event["context"] = context
        return event

    def _skip(
        self, user: SimUser, item: SimItem, now_ms: int, context: dict[str, Any]
    ) -> dict[str, Any]:
        event = self._event("skip", user, item, now_ms, context)
        upper = min(15.0, 0.1 * item.duration_seconds)
        event["watch_seconds"] = round(self._rng.uniform(1.0, upper), 1)
        return event

    def _watch(
        self, user: SimUser, item: SimItem, now_ms: int, context: dict[str, Any] | None
    ) -> dict[str, Any]:
        event = self._event("watch", user, item, now_ms, context)
        interest = _interest(user, item)
        # Beta(8, 1) for a perfect match (mean ~0.89) down to Beta(1, 8) (mean ~0.11).
        completion = self._rng.betavariate(1.0 + 7.0 * interest, 1.0 + 7.0 * (1.0 - interest))
        event["watch_seconds"] = round(completion * item.duration_seconds, 1)
        return event


def events_due(elapsed_seconds: float, rate: float, sent: int, max_burst: int | None = None) -> int:
    """How many events a producer pacing at ``rate``/s should send now, having sent ``sent``.

    The schedule is absolute (``rate * elapsed``), so rounding and sleep jitter never
    accumulate into drift; ``max_burst`` (default: one second of events) caps the catch-up
    after a stall so a paused producer does not flood the broker when it resumes.

    >>> events_due(1.0, 100.0, 0)
    100
    >>> events_due(0.5, 100.0, 40)
    10
    >>> events_due(30.0, 10.0, 0)
    10
    """
    if rate <= 0:
        msg = f"rate must be > 0 events/s, got {rate}"
        raise ValueError(msg)
    cap = max(1, math.ceil(rate)) if max_burst is None else max_burst
    due = math.floor(max(0.0, elapsed_seconds) * rate + 1e-9) - sent
    return max(0, min(due, cap))


def _user_index(user_id: str) -> int | None:
    if len(user_id) > 1 and user_id[0] == "u" and user_id[1:].isdigit():
        return int(user_id[1:])
    return None


def _make_user(rng: random.Random, index: int) -> SimUser:
    favourites = set(rng.sample(CATEGORIES, rng.choice((1, 1, 2, 2, 2, 3))))
    raw = {c: rng.gammavariate(5.0 if c in favourites else 0.2, 1.0) for c in CATEGORIES}
    total = sum(raw.values())
    return SimUser(
        user_id=f"u{index}",
        taste={c: w / total for c, w in raw.items()},
        locale=rng.choices(_LOCALES, weights=_LOCALE_WEIGHTS)[0],
        device=rng.choices(_DEVICES, weights=_DEVICE_WEIGHTS)[0],
    )


def _interest(user: SimUser, item: SimItem) -> float:
    # A favourite category carries roughly 0.25 or more of a user's taste; saturate there.
    return min(1.0, max(user.taste[c] for c in item.categories) / 0.25)


def _skip_probability(interest: float) -> float:
    return 0.8 - 0.7 * interest
