"""When an item may be recommended: its availability window (item v1.1), pure.

An item is a candidate while ``from_ts <= now < until_ts``; ``available: false`` and a
tombstone make the window empty. Only *restricted* items (a window, or withdrawn) are
stored anywhere: an unrestricted item is simply available, as every v1.0 item is.

The window is encoded compactly for Redis (``recloop:items:availability``): ``"W"`` for
withdrawn, otherwise ``"<from>:<until>"`` with an empty side for "none", so the HTTP API can
decide availability from one ``HMGET`` without parsing JSON.

>>> a = Availability.of(None, 1_000, 2_000)
>>> a.at(999), a.at(1_000), a.at(2_000)
(False, True, False)
>>> Availability.decode(a.encode()) == a, a.encode()
(True, '1000:2000')
>>> available_now("W", 5), available_now(None, 5)
(False, True)
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

NEVER = 2**63 - 1
"""``until`` of an item without an end, ``from`` of a withdrawn item."""

WITHDRAWN_CODE = "W"


@dataclass(frozen=True, slots=True)
class Availability:
    """An item's availability window ``[from_ms, until_ms)`` (empty when withdrawn)."""

    from_ms: int = 0
    until_ms: int = NEVER

    @classmethod
    def of(cls, available: bool | None, from_ts: int | None, until_ts: int | None) -> Availability:
        """The window of an item v1.1 message (``available=None``: a v1.0 message)."""
        if available is False:
            return WITHDRAWN
        return cls(from_ts or 0, NEVER if until_ts is None else until_ts)

    @property
    def withdrawn(self) -> bool:
        """Never available (``available: false`` or a tombstone)."""
        return self.from_ms >= NEVER

    @property
    def restricted(self) -> bool:
        """Whether the item is not simply always available."""
        return self.from_ms > 0 or self.until_ms < NEVER

    def at(self, now_ms: int) -> bool:
        """Whether the item may be recommended at ``now_ms``."""
        return self.from_ms <= now_ms < self.until_ms

    def next_change(self, now_ms: int) -> int | None:
        """When ``at`` next changes value after ``now_ms`` (``None``: never)."""
        if self.withdrawn:
            return None
        for ts in (self.from_ms, self.until_ms):
            if now_ms < ts < NEVER:
                return ts
        return None

    def encode(self) -> str:
        """The Redis form (see module doc)."""
        if self.withdrawn:
            return WITHDRAWN_CODE
        start = str(self.from_ms) if self.from_ms > 0 else ""
        end = str(self.until_ms) if self.until_ms < NEVER else ""
        return f"{start}:{end}"

    @classmethod
    def decode(cls, text: str) -> Availability:
        """Inverse of ``encode``."""
        if text == WITHDRAWN_CODE:
            return WITHDRAWN
        start, _, end = text.partition(":")
        return cls(int(start) if start else 0, int(end) if end else NEVER)


ALWAYS = Availability()
WITHDRAWN = Availability(NEVER, NEVER)


def available_now(encoded: str | bytes | None, now_ms: int) -> bool:
    """Availability from the Redis form (``None``: not restricted, so available)."""
    if encoded is None:
        return True
    text = encoded.decode() if isinstance(encoded, bytes) else encoded
    return Availability.decode(text).at(now_ms)


class AvailabilitySchedule:
    """Upcoming window edges (an item going live or off air by the clock), bounded.

    ``due`` returns the items whose availability may have changed since the last call;
    the caller re-reads their window (an edge superseded by a newer message is harmless).

    >>> s = AvailabilitySchedule(max_entries=10)
    >>> s.add("live-1", Availability.of(True, None, 2_000), now_ms=1_000)
    >>> s.due(1_999), s.due(2_000)
    ([], ['live-1'])
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._heap: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, item_id: str, window: Availability, now_ms: int) -> None:
        """Remember the window's next edge after ``now_ms``, if any."""
        edge = window.next_change(now_ms)
        if edge is None:
            return
        heapq.heappush(self._heap, (edge, item_id))
        if len(self._heap) > self.max_entries:  # keep the nearest edges
            self._heap = heapq.nsmallest(self.max_entries, self._heap)

    def due(self, now_ms: int) -> list[str]:
        """Items with an edge at or before ``now_ms`` (removed), in edge order."""
        out: list[str] = []
        while self._heap and self._heap[0][0] <= now_ms:
            out.append(heapq.heappop(self._heap)[1])
        return out
