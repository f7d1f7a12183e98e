"""Simulator-shaped traffic for ``bench/scale.py``, generated with numpy, fast and seeded.

The shape of ``pipeline.tooling.simulator`` (Zipf popularity, 12 categories, users with a
favourite category, locale and device segments, ~80 % of events with a positive weight,
contexts of the user's last ``context`` positives among their last ``history`` interactions)
without its per-event Python object churn, so
that millions of events can be produced in seconds. It depends on nothing of ``pipeline``
but ``LearnRecord`` and ``ItemInfo``, whose shape is the same before and after the
bounded-state work: the same seed gives the same stream to both source trees.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

CATEGORIES = (
    "Comedy", "Drama", "Action", "Documentary", "Music", "Gaming",
    "Sports", "News", "Kids", "SciFi", "Horror", "Cooking",
)  # fmt: skip
LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP", "hi-IN")
DEVICES = ("mobile", "tv", "web", "tablet")
T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
STEP_MS = 1  # 1,000 events/s of model time
# The traffic of the scale profile (``scale.SCALE_PROFILE``), the defaults of ``Traffic``: a
# variant that measures other settings passes its own (``bench/scale.py`` derives them from
# the ``ModelParams`` and ``RECLOOP_HISTORY_SIZE`` under test).
HISTORY = 50  # interactions remembered per user (RECLOOP_HISTORY_SIZE)
CONTEXT = 20  # positives a record carries as context (RECLOOP_LEARN_CONTEXT)
DURATION = 600.0


def _zipf_cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


class Traffic:
    """Items, users and an endless, deterministic event stream over them.

    >>> t = Traffic(n_items=100, n_users=10, seed=1)
    >>> batch = t.next_batch(5)
    >>> len(batch), batch[0]["ts"] == T0
    (5, True)
    >>> t = Traffic(n_items=100, n_users=1, seed=1, context=3, history=4)
    >>> _ = t.next_batch(50)
    >>> len(t.history(0)), len(t.context(0)) <= 3
    (4, True)

    ``context`` and ``history`` only shape what a record carries and what a user remembers:
    the items, users and draws are the same whatever they are (one random stream), so the
    defaults give exactly the stream the scale profile was measured with.
    """

    def __init__(
        self,
        *,
        n_items: int,
        n_users: int = 50_000,
        seed: int = 7,
        context: int = CONTEXT,
        history: int = HISTORY,
    ) -> None:
        if not 1 <= context <= history:
            msg = f"need 1 <= context <= history, got context={context}, history={history}"
            raise ValueError(msg)
        rng = np.random.default_rng(seed)
        self.n_items, self.n_users = n_items, n_users
        self.context_size, self.history_size = context, history
        self.item_ids = [f"i{k}" for k in range(n_items)]
        self.cat = rng.integers(0, len(CATEGORIES), n_items)
        second = rng.random(n_items) < 0.2
        self.cat2 = np.where(second, rng.integers(0, len(CATEGORIES), n_items), -1)
        self.published = T0 - rng.integers(0, 365 * 86_400_000, n_items)
        popularity = 1.0 / (rng.permutation(n_items) + 1.0)  # Zipf, exponent 1
        self.cdf = _zipf_cdf(popularity)
        self.by_cat = [np.flatnonzero(self.cat == c) for c in range(len(CATEGORIES))]
        self.cat_cdf = [_zipf_cdf(popularity[ids]) for ids in self.by_cat]
        self.fav = rng.integers(0, len(CATEGORIES), n_users)
        self.locale = rng.choice(len(LOCALES), n_users, p=[0.3] + [0.1] * 7)
        self.device = rng.choice(len(DEVICES), n_users, p=[0.55, 0.2, 0.2, 0.05])
        self.activity = _zipf_cdf(1.0 / np.sqrt(rng.permutation(n_users) + 1.0))
        # per user: ring of the last ``history`` interactions (item, weight, kind, watch seconds);
        # filled now (``np.full``, not lazily mapped zeros) so that their pages are resident
        # before a benchmark takes its base RSS and are not counted as the model's growth
        self.h_item = np.full((n_users, history), -1, dtype=np.int64)
        self.h_weight = np.full((n_users, history), 0.0, dtype=np.float64)
        self.h_kind = np.full((n_users, history), 0, dtype=np.int8)
        self.h_watch = np.full((n_users, history), 0.0, dtype=np.float64)
        self.h_next = np.zeros(n_users, dtype=np.int64)
        self.rng = np.random.default_rng(seed + 1)
        self.position = 0

    def item_infos(self) -> Iterator[tuple[str, tuple[str, ...], float, int, str]]:
        """``(item_id, categories, duration, published_ts, title)`` of every item."""
        for k, item_id in enumerate(self.item_ids):
            cats = (CATEGORIES[self.cat[k]],)
            if self.cat2[k] >= 0 and self.cat2[k] != self.cat[k]:
                cats += (CATEGORIES[self.cat2[k]],)
            yield item_id, cats, DURATION, int(self.published[k]), f"Item {k}"

    def now(self) -> int:
        """Model time of the next event."""
        return T0 + self.position * STEP_MS

    def draw_users(self, n: int) -> np.ndarray:
        """``n`` users drawn by activity (a few heavy users, a long tail)."""
        return np.searchsorted(self.activity, self.rng.random(n)).astype(np.int64)

    def next_batch(self, n: int, users: np.ndarray | None = None) -> list[dict[str, Any]]:
        """The next ``n`` events (dicts with the fields of a learn record and of an event)."""
        rng = self.rng
        u = self.draw_users(n) if users is None else users
        from_fav = rng.random(n) < 0.7
        items = np.searchsorted(self.cdf, rng.random(n))
        for c in range(len(CATEGORIES)):
            sel = np.flatnonzero(from_fav & (self.fav[u] == c))
            if sel.shape[0] and self.by_cat[c].shape[0]:
                pick = np.searchsorted(self.cat_cdf[c], rng.random(sel.shape[0]))
                items[sel] = self.by_cat[c][np.minimum(pick, self.by_cat[c].shape[0] - 1)]
        items = np.minimum(items, self.n_items - 1)
        r = rng.random(n)
        completion = rng.beta(5.0, 2.0, n)
        kinds = np.where(r < 0.6, 0, np.where(r < 0.85, 1, 2))  # watch, click, skip
        out = []
        for k in range(n):
            user, item, kind = int(u[k]), int(items[k]), int(kinds[k])
            if kind == 0:
                c = float(completion[k])
                weight, watch = min(max(1.3 * c - 0.3, -0.3), 1.0), c * DURATION
            elif kind == 1:
                c, weight, watch = None, 0.3, 0.0
            else:
                c, weight, watch = 0.01, -1.0, 0.01 * DURATION
            out.append(self._event(user, item, kind, c, weight, watch))
        return out

    def _event(
        self, user: int, item: int, kind: int, c: float | None, weight: float, watch: float
    ) -> dict[str, Any]:
        ts = self.now()
        self.position += 1
        context: tuple[tuple[str, float], ...] = ()
        if weight > 0:
            context = self.context(user)
        slot = self.h_next[user] % self.history_size
        self.h_item[user, slot], self.h_weight[user, slot] = item, weight
        self.h_kind[user, slot], self.h_watch[user, slot] = kind, watch
        self.h_next[user] += 1
        return {
            "user": user,
            "item_id": self.item_ids[item],
            "ts": ts,
            "kind": ("watch", "click", "skip")[kind],
            "weight": weight,
            "completion": c,
            "watch_seconds": watch,
            "segments": (
                f"locale:{LOCALES[self.locale[user]]}",
                f"device:{DEVICES[self.device[user]]}",
            ),
            "context": context,
        }

    def segments(self, user: int) -> tuple[str, str]:
        """The trending segments of a user's events."""
        return f"locale:{LOCALES[self.locale[user]]}", f"device:{DEVICES[self.device[user]]}"

    def context(self, user: int) -> tuple[tuple[str, float], ...]:
        """The user's last ``context`` positives, oldest first, as ``(item_id, weight)``."""
        return tuple((self.item_ids[i], w) for i, w, _, _ in self.history(user, positive=True))

    def history(self, user: int, *, positive: bool = False) -> list[tuple[int, float, int, float]]:
        """The user's remembered interactions, oldest first (``(item, weight, kind, watch)``)."""
        n = int(self.h_next[user])
        size = self.history_size
        order = [(n - 1 - j) % size for j in range(min(n, size))]
        out = []
        for slot in order:
            w = float(self.h_weight[user, slot])
            if positive and w <= 0:
                continue
            item, kind = int(self.h_item[user, slot]), int(self.h_kind[user, slot])
            out.append((item, w, kind, float(self.h_watch[user, slot])))
            if positive and len(out) == self.context_size:
                break
        out.reverse()
        return out

    def history_docs(self, user: int) -> list[tuple[dict[str, Any], str]]:
        """The user's remembered interactions as event documents and ids, oldest first.

        What ``bench/scale.py`` and ``bench/scale_learn.py`` replay to give the measured user
        their state (each turns a document into an event of its own tree's ``pipeline``).
        """
        kinds = ("watch", "click", "skip")
        return [
            (
                {
                    "user": user,
                    "item_id": self.item_ids[i],
                    "ts": self.now() - 1,
                    "kind": kinds[k],
                    "watch_seconds": watch,
                    "segments": self.segments(user),
                },
                f"h{user}-{j}",
            )
            for j, (i, _, k, watch) in enumerate(self.history(user))
        ]


def event_doc(e: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The event v1 document of a traffic dict (``Event.model_validate`` of each tree)."""
    doc: dict[str, Any] = {
        "event_id": event_id,
        "type": e["kind"],
        "user_id": f"u{e['user']}",
        "item_id": e["item_id"],
        "ts": e["ts"],
        "context": dict(s.split(":", 1) for s in e["segments"]),
    }
    if e["kind"] != "click":
        doc["watch_seconds"] = e["watch_seconds"]
    return doc


def record_args(e: dict[str, Any]) -> tuple[Any, ...]:
    """``LearnRecord``'s positional arguments for a traffic dict (each tree's own class)."""
    return (
        e["item_id"], e["ts"], e["kind"], e["weight"], e["completion"], e["segments"],
        e["context"],
    )  # fmt: skip
