"""When to refresh a user's list: coalescing bursts, deferred refreshes, stale lists.

Rules (pure, so they are tested without a clock):

* the first event after a quiet period refreshes at once;
* further events within ``interval_ms`` of the last refresh are coalesced: one deferred
  refresh runs when the interval has passed, carrying the *latest* event as its trigger, so
  the last event is always reflected;
* a user active within ``active_ms`` whose list is older than ``stale_ms`` is refreshed in
  the background, so lists follow trends without new events;
* under overload the interval stretches to the backlog (``overload_interval_ms``): while the
  worker is behind by S seconds, a user's refresh waits up to S seconds, so a user with
  several events in the backlog gets one list for all of them instead of one per event, and
  the backlog drains at full speed; the last event is still always reflected.

State is bounded: at most ``max_users`` users are tracked (least recently active dropped).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from pipeline.lists.build import Trigger


class RefreshScheduler:
    """Per-user refresh bookkeeping of one worker.

    >>> s = RefreshScheduler(interval_ms=500)
    >>> s.on_event("u", Trigger("e1", 0), now_ms=1_000)
    True
    >>> s.mark_refreshed("u", 1_000)
    >>> s.on_event("u", Trigger("e2", 0), now_ms=1_200)
    False
    >>> s.due(1_500)
    [('u', Trigger(event_id='e2', ts=0, received_ms=None))]
    """

    def __init__(self, interval_ms: int, max_users: int = 200_000) -> None:
        self.base_interval_ms = interval_ms
        self.interval_ms = interval_ms
        self.max_users = max_users
        self.last_refresh: OrderedDict[str, int] = OrderedDict()
        self.last_active: OrderedDict[str, int] = OrderedDict()
        self.pending: dict[str, Trigger] = {}
        # users with a batch write in flight -> how many such batches (see ``hold``)
        self.writing: dict[str, int] = {}

    def on_event(self, user_id: str, trigger: Trigger, now_ms: int) -> bool:
        """Record activity; ``True`` when the list should be refreshed now."""
        self.last_active[user_id] = now_ms
        self.last_active.move_to_end(user_id)
        self._bound()
        last = self.last_refresh.get(user_id)
        if last is None or now_ms - last >= self.interval_ms:
            self.pending.pop(user_id, None)
            return True
        self.pending[user_id] = trigger
        return False

    def mark_refreshed(self, user_id: str, now_ms: int) -> None:
        """A list was published for the user."""
        self.last_refresh[user_id] = now_ms
        self.last_refresh.move_to_end(user_id)
        while len(self.last_refresh) > self.max_users:  # a refresh may outlive eviction
            self.last_refresh.popitem(last=False)

    def set_backlog(self, seconds: float, *, max_interval_ms: int) -> None:
        """Stretch the coalescing interval to a backlog of ``seconds`` (see module doc).

        >>> s = RefreshScheduler(interval_ms=500)
        >>> s.set_backlog(12.0, max_interval_ms=60_000); s.interval_ms
        12000
        >>> s.set_backlog(0.1, max_interval_ms=60_000); s.interval_ms
        500
        """
        self.interval_ms = overload_interval_ms(self.base_interval_ms, seconds, max_interval_ms)

    def hold(self, user_ids: Iterable[str]) -> None:
        """Keep the users' deferred refreshes back until their batch's write is durable.

        A batch schedules its users' refreshes when it is learned, before its write (which
        records the refresh as owed) reaches Redis. A deferred refresh run in between would
        publish a list the owed record does not name yet, so the list could not settle it:
        the record stayed owed and was rescued, and published again, 15 s later.

        >>> s = RefreshScheduler(interval_ms=0)
        >>> s.pending["u"] = Trigger("e1", 0)
        >>> s.hold(["u"]); s.due(now_ms=1)
        []
        >>> s.release(["u"]); s.due(now_ms=1)
        [('u', Trigger(event_id='e1', ts=0, received_ms=None))]
        """
        for user_id in user_ids:
            self.writing[user_id] = self.writing.get(user_id, 0) + 1

    def release(self, user_ids: Iterable[str]) -> None:
        """The users' write (one ``hold``) is durable: their refreshes may run again."""
        for user_id in user_ids:
            left = self.writing.get(user_id, 0) - 1
            if left > 0:
                self.writing[user_id] = left
            else:
                self.writing.pop(user_id, None)

    def due(self, now_ms: int, limit: int | None = None) -> list[tuple[str, Trigger]]:
        """Deferred refreshes whose interval has passed, longest waiting first (removed).

        ``limit`` bounds one call's work; the rest stay pending for the next call, like the
        refreshes of users whose write is still in flight (``hold``).
        """
        ready = []
        writing = self.writing
        for user_id, trig in self.pending.items():
            if user_id in writing:
                continue
            if now_ms - self.last_refresh.get(user_id, 0) >= self.interval_ms:
                ready.append((user_id, trig))
                if limit is not None and len(ready) >= limit:
                    break
        for user_id, _ in ready:
            del self.pending[user_id]
        return ready

    def take_pending(self) -> list[tuple[str, Trigger]]:
        """Every deferred refresh, due or not (removed from pending): for a handover.

        Before this worker gives up users (rebalance, shutdown) their deferred refreshes must
        run here: the new owner never saw the events they carry.
        """
        out = list(self.pending.items())
        self.pending.clear()
        return out

    def stale(self, now_ms: int, *, stale_ms: int, active_ms: int, limit: int) -> list[str]:
        """Active users whose list is older than ``stale_ms`` (at most ``limit``)."""
        out: list[str] = []
        if limit <= 0:
            return out
        for user_id, active in reversed(self.last_active.items()):
            if now_ms - active > active_ms:
                break  # ordered by activity: everyone further is inactive too
            if user_id in self.pending:
                continue
            if now_ms - self.last_refresh.get(user_id, 0) >= stale_ms:
                out.append(user_id)
                if len(out) == limit:
                    break
        return out

    def forget(self, user_id: str) -> None:
        """Stop tracking a user."""
        self.last_refresh.pop(user_id, None)
        self.last_active.pop(user_id, None)
        self.pending.pop(user_id, None)

    def clear(self) -> None:
        """Drop everything (partitions were reassigned)."""
        self.last_refresh.clear()
        self.last_active.clear()
        self.pending.clear()
        self.writing.clear()

    def _bound(self) -> None:
        while len(self.last_active) > self.max_users:
            user_id, _ = self.last_active.popitem(last=False)
            self.last_refresh.pop(user_id, None)
            self.pending.pop(user_id, None)


def overload_interval_ms(base_ms: int, backlog_seconds: float, max_ms: int) -> int:
    """The coalescing interval while the worker is ``backlog_seconds`` behind.

    >>> overload_interval_ms(500, 0.0, 60_000), overload_interval_ms(500, 600.0, 60_000)
    (500, 60000)
    """
    return int(max(base_ms, min(max_ms, backlog_seconds * 1000)))
