"""Users who come back: the simulator's model of retention, so return rates have a ground truth.

In the closed loop (``recloop simulate --closed-loop --away-seconds S``) a user whose session
ends goes away for a while before they can start another one. How long depends on how well
the session served them: its *satisfaction* is the mean interest (``World.interest``, 0..1)
of what they chose, and the time away is exponential with mean

    away_seconds * exp(-sensitivity * (satisfaction - 0.5))

so a session of well-matched items (0.8) brings the user back about 2.5 times sooner than
one of poorly matched items (0.5) with the default sensitivity of 3. Better lists lead to
better choices, hence to more returns: an experiment's return rate then measures something
real, and an A/A experiment (two identical arms) has a true difference of zero.

Pure and seeded like the rest of the simulator: the random draws come from the world's
traffic stream, and times are the event times the world is asked for.

>>> returns = Returns(away_seconds=60.0)
>>> round(returns.mean_away_ms(0.5)), round(returns.mean_away_ms(0.8))
(60000, 24394)
>>> import random
>>> returns.leave(7, satisfaction=0.5, now_ms=0, rng=random.Random(1))
>>> returns.available(7, now_ms=0), returns.available(8, now_ms=0)
(False, True)
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from dataclasses import dataclass, field

TRIES = 8
"""Existing users drawn for a new session before a new user starts it instead."""


@dataclass(slots=True)
class Returns:
    """When each user who left may start a session again (bounded: oldest forgotten first)."""

    away_seconds: float
    sensitivity: float = 3.0
    max_users: int = 65_536
    _back_at: OrderedDict[int, int] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        if self.away_seconds <= 0 or self.sensitivity < 0:
            msg = (
                f"returns need away_seconds > 0 (got {self.away_seconds}) and "
                f"sensitivity >= 0 (got {self.sensitivity})"
            )
            raise ValueError(msg)

    def mean_away_ms(self, satisfaction: float) -> float:
        """Mean time away after a session of this satisfaction (ms)."""
        return self.away_seconds * 1000.0 * math.exp(-self.sensitivity * (satisfaction - 0.5))

    def leave(self, user: int, *, satisfaction: float, now_ms: int, rng: random.Random) -> None:
        """User ``user`` ended a session at ``now_ms``: draw when they may come back."""
        away = rng.expovariate(1.0 / self.mean_away_ms(satisfaction))
        self._back_at[user] = now_ms + int(away)
        self._back_at.move_to_end(user)
        while len(self._back_at) > self.max_users:
            self._back_at.popitem(last=False)

    def available(self, user: int, now_ms: int) -> bool:
        """Whether ``user`` may start a session at ``now_ms`` (never left, or is back)."""
        return self._back_at.get(user, now_ms) <= now_ms
