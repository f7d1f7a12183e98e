"""What the Faust agents hand to the processor, and the first step on it: parse or reject.

Kept free of Faust so the processor (and its tests) see plain records, and so every topic
(events, items, controls) splits its batch into valid records and dead letters the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from schemas.validation import Rejected

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One consumed record, as the agent saw it."""

    value: bytes
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    tombstone: bool = False  # a null value (on the items topic: the item is withdrawn)

    @property
    def source(self) -> str:
        """The partition it was read from, ``topic:partition``: what offset guards key on.

        >>> RawMessage(b"", "recloop.events", 3, 41).source
        'recloop.events:3'
        """
        return f"{self.topic}:{self.partition}"


class Publisher(Protocol):
    """Sends records and returns once the broker acknowledged all of them."""

    async def publish(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Send ``(key, value)`` records to ``topic`` and wait for every acknowledgement."""


def split_valid(
    messages: Sequence[RawMessage], parse: Callable[[bytes], T | Rejected]
) -> tuple[list[T], list[tuple[RawMessage, Rejected]]]:
    """Parse every message: the valid records, and the rejected ones with their reason."""
    valid, rejected = split_sourced(messages, parse)
    return [record for _, record in valid], rejected


def split_sourced(
    messages: Sequence[RawMessage], parse: Callable[[bytes], T | Rejected]
) -> tuple[list[tuple[RawMessage, T]], list[tuple[RawMessage, Rejected]]]:
    """``split_valid`` keeping each valid record's message (partition, offset)."""
    valid: list[tuple[RawMessage, T]] = []
    rejected: list[tuple[RawMessage, Rejected]] = []
    for m in messages:
        parsed = parse(m.value)
        if isinstance(parsed, Rejected):
            rejected.append((m, parsed))
        else:
            valid.append((m, parsed))
    return valid, rejected
