"""Items that come and go during a simulated run: releases, live channels, retirements.

The new-item slot (``pipeline.lists.new_items``) can only be measured on a catalogue that
changes: ``Churn`` says how fast, ``ChurnSchedule`` decides when (seeded, on its own random
stream, so turning churn on leaves the users and their traffic draws untouched until a
new item is chosen). What happens, each with the message a producer sends on
``recloop.items``:

- **release**: a new item, ``published_ts`` = its time; by a creator of the catalogue with
  probability ``known_creator_share`` (creators specialise in a home category, so a creator
  a user watched mostly releases what the user likes), else by a new creator. A share
  ``limited_share`` of releases is available for ``limited_seconds`` only
  (``available_until_ts``; the world drops it then, no message needed);
- **on air / off air**: ``live_channels`` channels alternate between on air (``available:
  true``) and off air (``available: false``), for exponential times of mean
  ``on_air_seconds`` / ``off_air_seconds``; they start off air;
- **retire**: the oldest item is withdrawn by a tombstone, ``retirements_per_minute``, and
  whenever a release would take the catalogue past ``max_items`` (the bound on the world's
  memory).

>>> from pipeline.tooling.sim_catalog import build_catalog
>>> catalog = build_catalog(random.Random(0), 16, 0)
>>> schedule = ChurnSchedule(Churn(releases_per_minute=60.0), 0, catalog)
>>> kinds = [c.kind for c in schedule.due(0) + schedule.due(10_000)]
>>> 5 <= kinds.count(RELEASE) <= 20, set(kinds)
(True, {'release'})
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Final

from pipeline.tooling.sim_catalog import YEAR_MS, SimItem, make_item, n_creators

RELEASE: Final = "release"
ON_AIR: Final = "on_air"
OFF_AIR: Final = "off_air"
EXPIRED: Final = "expired"
RETIRED: Final = "retired"
_MAX_PER_CALL: Final = 10_000  # a clock that jumps far ahead does not stall the caller


@dataclass(frozen=True, slots=True)
class Churn:
    """How fast the simulated catalogue changes (all off by default)."""

    releases_per_minute: float = 0.0
    known_creator_share: float = 0.7
    limited_share: float = 0.0
    limited_seconds: float = 300.0
    live_channels: int = 0
    on_air_seconds: float = 120.0
    off_air_seconds: float = 120.0
    retirements_per_minute: float = 0.0
    max_items: int = 5_000

    def __post_init__(self) -> None:
        rates = (self.releases_per_minute, self.retirements_per_minute, self.live_channels)
        times = (self.limited_seconds, self.on_air_seconds, self.off_air_seconds)
        shares = (self.known_creator_share, self.limited_share)
        if min(rates) < 0 or min(times) <= 0 or not all(0 <= s <= 1 for s in shares):
            msg = (
                f"invalid churn {self}: rates and channels must be >= 0, times > 0, "
                "shares within [0, 1]"
            )
            raise ValueError(msg)
        if self.max_items < 1:
            msg = f"max_items must be >= 1, got {self.max_items}"
            raise ValueError(msg)

    @property
    def active(self) -> bool:
        """Whether anything ever changes."""
        return bool(self.releases_per_minute or self.retirements_per_minute or self.live_channels)


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """One change at ``ts``: ``item`` is the item after it (None once retired or expired)."""

    ts: int
    kind: str
    item_id: str
    item: SimItem | None

    @property
    def sends(self) -> bool:
        """Whether a producer sends a message (an expiry is in the item's own window)."""
        return self.kind != EXPIRED

    def message(self) -> dict[str, Any] | None:
        """The item v1 dict to send, or None for a tombstone."""
        return self.item.to_v1() if self.item is not None else None


class ChurnSchedule:
    """When each change of ``Churn`` happens, from the first ``due`` call on.

    Parameters
    ----------
    churn
        The rates.
    seed
        Seeds the schedule's own random stream.
    catalog
        The initial catalogue (item ids ``i0..``; releases continue the numbering).
    epoch_ms
        Reference time: live channels were created in the year before it.
    """

    def __init__(self, churn: Churn, seed: int, catalog: list[SimItem], epoch_ms: int = 0) -> None:
        self.churn = churn
        self._rng = random.Random(f"recloop-sim:churn:{seed}")
        self._creators = n_creators(len(catalog))
        self._new_creators = 0
        self._ranks = max(1, len(catalog))
        self._next_id = len(catalog)
        # oldest first: what retirements take
        self._present: deque[str] = deque(
            item.item_id for item in sorted(catalog, key=lambda item: item.published_ts)
        )
        self._gone: set[str] = set()  # expired before their turn to retire
        rng = self._rng
        self.channels = [
            make_item(
                rng,
                f"live{k}",
                k % self._creators,
                published_ts=epoch_ms - rng.randrange(YEAR_MS),
                popularity=1.0 / rng.randint(1, self._ranks),
            ).with_availability(False)
            for k in range(churn.live_channels)
        ]
        self._started = False
        self._next_release = self._next_retire = 0.0
        self._toggles: list[tuple[float, int]] = []  # (ts, channel), a heap
        self._expiries: list[tuple[int, str]] = []  # (until_ts, item id), a heap

    def due(self, now_ms: int) -> list[CatalogChange]:
        """The changes due by ``now_ms`` since the previous call, in time order."""
        if not self._started:
            self._start(now_ms)
        out: list[CatalogChange] = []
        while len(out) < _MAX_PER_CALL:
            ts, act = min(
                (self._next_release, self._release),
                (self._next_retire, self._retire_scheduled),
                (self._toggles[0][0] if self._toggles else float("inf"), self._toggle),
                (self._expiries[0][0] if self._expiries else float("inf"), self._expire),
                key=lambda pair: pair[0],
            )
            if ts > now_ms:
                break
            out.extend(act(int(ts)))
        return out

    # --- internals --------------------------------------------------------------------
    def _start(self, now_ms: int) -> None:
        self._started = True
        self._next_release = now_ms + self._gap(self.churn.releases_per_minute)
        self._next_retire = now_ms + self._gap(self.churn.retirements_per_minute)
        self._toggles = [
            (now_ms + self._rng.expovariate(1.0 / self.churn.off_air_seconds) * 1000, k)
            for k in range(len(self.channels))
        ]
        heapq.heapify(self._toggles)

    def _gap(self, per_minute: float) -> float:
        return self._rng.expovariate(per_minute / 60_000) if per_minute > 0 else float("inf")

    def _release(self, ts: int) -> list[CatalogChange]:
        churn, rng = self.churn, self._rng
        self._next_release = ts + self._gap(churn.releases_per_minute)
        if rng.random() < churn.known_creator_share:
            creator = rng.randrange(self._creators)
        else:
            creator = self._creators + self._new_creators
            self._new_creators += 1
        item = make_item(
            rng,
            f"i{self._next_id}",
            creator,
            published_ts=ts,
            popularity=1.0 / rng.randint(1, self._ranks),
        )
        self._next_id += 1
        if rng.random() < churn.limited_share:
            until = ts + int(churn.limited_seconds * 1000)
            item = replace(item, available_until_ts=until)
            heapq.heappush(self._expiries, (until, item.item_id))
        out = []
        while len(self._present) >= churn.max_items:
            out.extend(self._retire(ts))
        self._present.append(item.item_id)
        out.append(CatalogChange(ts, RELEASE, item.item_id, item))
        return out

    def _retire_scheduled(self, ts: int) -> list[CatalogChange]:
        self._next_retire = ts + self._gap(self.churn.retirements_per_minute)
        return self._retire(ts)

    def _retire(self, ts: int) -> list[CatalogChange]:
        while self._present:
            item_id = self._present.popleft()
            if item_id not in self._gone:
                return [CatalogChange(ts, RETIRED, item_id, None)]
            self._gone.discard(item_id)
        return []

    def _toggle(self, ts: int) -> list[CatalogChange]:
        _, k = heapq.heappop(self._toggles)
        channel = self.channels[k]
        on = not channel.available
        self.channels[k] = channel = channel.with_availability(on)
        mean = self.churn.on_air_seconds if on else self.churn.off_air_seconds
        heapq.heappush(self._toggles, (ts + self._rng.expovariate(1.0 / mean) * 1000, k))
        return [CatalogChange(ts, ON_AIR if on else OFF_AIR, channel.item_id, channel)]

    def _expire(self, ts: int) -> list[CatalogChange]:
        _, item_id = heapq.heappop(self._expiries)
        self._gone.add(item_id)
        return [CatalogChange(ts, EXPIRED, item_id, None)]
