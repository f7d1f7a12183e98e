"""Test doubles shipped with the library, for the ports a worker is composed from.

Like bytewax's ``TestingSink``: a test composes a real worker (real Redis, real scripts) and
swaps only the Kafka side for a ``RecordingSender`` that keeps what would have been sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import orjson


class RecordingSender:
    """A ``RecordSender`` that records every record by topic (and can fail on demand).

    >>> import asyncio
    >>> sender = RecordingSender()
    >>> asyncio.run(sender.send("t", [(b"k", b'{"a": 1}')]))
    >>> sender.values("t")
    [{'a': 1}]
    """

    def __init__(self) -> None:
        self.records: dict[str, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
        self.failures_left = 0

    async def send(self, topic: str, records: Sequence[tuple[bytes | None, bytes | None]]) -> None:
        """Record ``records`` (or raise ``ConnectionError`` while ``failures_left`` > 0)."""
        if self.failures_left > 0:
            self.failures_left -= 1
            msg = "recording sender told to fail"
            raise ConnectionError(msg)
        self.records[topic].extend(records)

    def values(self, topic: str) -> list[dict[str, object]]:
        """The JSON values sent to ``topic``, in order (tombstones left out)."""
        return [orjson.loads(v) for _, v in self.records[topic] if v is not None]

    def tombstones(self, topic: str) -> list[bytes | None]:
        """Keys of the tombstones (null values) sent to ``topic``, in order."""
        return [k for k, v in self.records[topic] if v is None]

    def clear(self) -> None:
        """Forget everything recorded."""
        self.records.clear()
