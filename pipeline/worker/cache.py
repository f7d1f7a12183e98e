"""The worker's bounded cache of the user states it owns (least recently used dropped first).

A user's events all reach one worker (their partition's owner), so its cached state is the
truth until partitions move; then the cache is cleared and states reload from Redis.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection

from pipeline.features.state import UserState
from pipeline.stores.users import UserStore
from pipeline.worker.metrics import WorkerMetrics
from pipeline.worker.retry import retry_forever


class UserCache:
    """At most ``size`` user states, loaded from Redis on a miss (retried through outages)."""

    def __init__(self, store: UserStore, *, size: int, metrics: WorkerMetrics) -> None:
        self.store = store
        self.size = size
        self.metrics = metrics
        self.states: OrderedDict[str, UserState] = OrderedDict()

    async def ensure(self, user_ids: Collection[str]) -> dict[str, UserState]:
        """The states of ``user_ids``, loading the missing ones in one round trip."""
        missing = [u for u in user_ids if u not in self.states]
        if missing:
            loaded = await retry_forever(
                lambda: self.store.load_many(missing),
                what="redis user load",
                on_error=lambda _: self.metrics.redis_errors.inc(),
            )
            self.states.update(loaded)
        out = {}
        for u in user_ids:
            self.states.move_to_end(u)
            out[u] = self.states[u]
        while len(self.states) > self.size:
            self.states.popitem(last=False)
        self.metrics.cached_users.set(len(self.states))
        return out

    def put(self, state: UserState) -> None:
        """Hold ``state`` (a user just forgotten starts empty)."""
        self.states[state.user_id] = state

    def drop(self, user_id: str) -> None:
        """Forget a cached user."""
        self.states.pop(user_id, None)

    def clear(self) -> None:
        """Drop everything: another worker may now write these users."""
        self.states.clear()
        self.metrics.cached_users.set(0)
