"""One exception hierarchy for recloop: catch :class:`RecloopError` to catch them all.

Each class also derives from the builtin a caller would naturally catch (``ValueError``
for bad input, ``RuntimeError`` for an environment problem), so code written against the
builtins keeps working. Messages say what was wrong and what to do about it.
"""

from __future__ import annotations

from schemas.dead_letter import RejectReason


class RecloopError(Exception):
    """Base of every error recloop raises on purpose."""


class ConfigError(RecloopError, ValueError):
    """A setting is missing, malformed or inconsistent with another (see ``Settings``)."""


class StackError(RecloopError, RuntimeError):
    """Kafka or Redis is unreachable or refused a request (start it: ``recloop stack up``)."""


class InvalidEventError(RecloopError, ValueError):
    """A message failed its contract before it was sent; nothing reached Kafka.

    Attributes
    ----------
    reason
        The same code a worker would have dead-lettered the message with.
    detail
        Which field was wrong and how.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"invalid message ({reason.value}): {detail}")


class WriteConflictError(RecloopError, RuntimeError):
    """A user's writes kept conflicting: another live worker writes the same user.

    One conflict is normal after a rebalance (the user is reloaded and the events applied
    again); several in a row for one batch mean two workers own the user at once.
    """


class DeliveryError(RecloopError, RuntimeError):
    """Kafka did not acknowledge messages that were handed to the producer."""
