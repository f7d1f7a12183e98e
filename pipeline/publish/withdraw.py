"""Withdrawn items leave every list this worker's users hold, within one sweep.

When items become unavailable (item v1.1 ``available: false``, a tombstone, a passed
``available_until_ts``), the worker owning each partition of users runs ``sweep``:

1. after every batch in flight is written (the caller runs it exclusively of batches), and
   under the publisher's lock, so every list built before the catalogue changed is stored
   and indexed: nothing that holds the item can be written after the sweep read the index;
2. it reads the users of its partitions whose lists hold the items (the holders index),
   then their stored lists, and republishes (Redis, then the topic) each one without its
   unavailable items (``pipeline.lists.withdraw``), a JSON round trip per list instead of
   a ranking;
3. and queues a background refresh of those users, which ranks their lists again (full
   length) once their coalescing interval has passed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable

from pipeline.clock import Clock
from pipeline.lists.build import BuiltList, Trigger
from pipeline.lists.withdraw import item_ids, without_items
from pipeline.publish.ports import HolderIndex
from pipeline.publish.publisher import ListPublisher
from pipeline.publish.refresher import Refresher

log = logging.getLogger(__name__)


class Withdrawals:
    """Republishes the lists of this worker's users without unavailable items."""

    def __init__(
        self,
        publisher: ListPublisher,
        refresher: Refresher,
        index: HolderIndex,
        *,
        available: Callable[[str, int], bool],
        owned: Callable[[], Iterable[int]],
        clock: Clock,
    ) -> None:
        self.publisher = publisher
        self.refresher = refresher
        self.index = index
        self.available = available
        self.owned = owned
        self.clock = clock

    async def sweep(self, withdrawn: Collection[str]) -> int:
        """Take ``withdrawn`` items out of the lists of owned users; how many lists changed."""
        if not withdrawn:
            return 0
        now = self.clock.now_ms()
        partitions = sorted(self.owned())

        def keep(item_id: str) -> bool:
            return self.available(item_id, now)

        async def read() -> list[BuiltList]:
            users = await self.index.holders(withdrawn, partitions)
            docs = await self.index.lists(sorted(users))
            out = []
            for user_id, doc in docs.items():
                patched = without_items(doc, keep, now_ms=now)
                if patched is not None:
                    out.append(
                        BuiltList(
                            user_id,
                            patched,
                            Trigger(None, None),
                            None,
                            now,
                            tuple(item_ids(patched)),
                        )
                    )
            return out

        replaced = await self.publisher.replace(read, "withdrawn")
        self.refresher.schedule(b.user_id for b in replaced)
        log.info(
            "withdrawn items left lists items=%d lists=%d partitions=%d",
            len(withdrawn),
            len(replaced),
            len(partitions),
        )
        return len(replaced)
