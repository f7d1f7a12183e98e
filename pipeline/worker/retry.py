"""Retry with capped exponential backoff, for the I/O that must not give up.

A worker that cannot write to Redis or Kafka must neither skip the batch (events would be
lost) nor crash-loop: it waits and retries, logging clearly that it is degraded, and resumes
by itself when the dependency is back. Offsets are not committed meanwhile, so the broker
keeps the events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis import exceptions as redis_errors

T = TypeVar("T")

log = logging.getLogger(__name__)

RETRYABLE: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    OSError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    # a Redis Cluster while a master is down or slots move
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.SlotNotCoveredError,
    redis_errors.MasterDownError,
)


def backoff_seconds(attempt: int, base: float = 0.1, cap: float = 5.0) -> float:
    """Delay before retry number ``attempt`` (1-based).

    >>> [backoff_seconds(a) for a in (1, 2, 3, 10)]
    [0.1, 0.2, 0.4, 5.0]
    """
    return float(min(cap, base * 2 ** (attempt - 1)))


async def retry_forever(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    retryable: tuple[type[BaseException], ...] = RETRYABLE,
    on_error: Callable[[BaseException], None] | None = None,
) -> T:
    """Run ``operation`` until it succeeds, backing off on retryable errors."""
    attempt = 0
    while True:
        try:
            result = await operation()
        except retryable as exc:
            attempt += 1
            if on_error is not None:
                on_error(exc)
            delay = backoff_seconds(attempt)
            level = logging.WARNING if attempt in (1, 5) or attempt % 20 == 0 else logging.DEBUG
            log.log(
                level,
                "degraded: %s failed, retrying attempt=%d delay=%.1fs error=%s",
                what,
                attempt,
                delay,
                type(exc).__name__,
            )
            await asyncio.sleep(delay)
            continue
        if attempt:
            log.warning("recovered: %s succeeded after attempts=%d", what, attempt + 1)
        return result
