"""Experiment sums in Redis: what the worker adds, exactly once, and the report reads.

Each arm keeps, per partition (``recloop:p:{P}:experiment:<name>:<variant>``), the sums
over its users that the user-level report needs: each value (``hits``, ``actions``, ...),
its sum of squares (``sq:<value>``), the products of each metric's numerator and denominator
(``xy:<x>:<y>``) and the users who came back (``returned:<seconds>``); the exposed users and
their first exposure are a sorted set beside it (``...:exposed``, written with the lists,
``pipeline.stores.lists``). The increments come from ``pipeline.lists.experiment_outcomes``:
each is exact because it is computed from the user's own values before the event, which
the user's write then stores (``apply_user.lua``).

The sums are kept per arm *and partition*: a batch's users live in many hash slots, and no
command may span two, so a batch cannot update one global hash together with its users'
de-duplication sets. Exactly-once comes from Kafka offsets instead:

* every outcome comes from one event, read at one offset of one partition of the events
  topic, and the events of a partition are processed in offset order by one owner at a time
  (a zombie owner replays offsets the new one also replays, never skips any);
* each hash keeps, per source partition, the highest offset it has counted
  (``offset:<topic>:<partition>``); ``count_outcomes.lua`` adds an event's counts only if its
  offset is above that guard, then raises the guard. Everything at or below the guard was
  counted already, by this worker, a crashed one or a zombie;
* the batch sends its counts *before* its users' writes and waits for the reply. A batch
  redelivered after a crash is therefore skipped here, wherever it stopped, while its users'
  scripts apply exactly the events their de-duplication sets do not hold yet.

So an outcome is counted once however often its event is delivered, and the count of an
event whose user write never happened (a batch dead-lettered twice) is the only drift. A
forget takes the user's part out the same way, guarded by the forget's own offset on the
controls topic (``pipeline.stores.forget``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.lists.experiment_report import ArmTotals, report
from pipeline.lists.experiments import Experiment
from pipeline.stores.client import RedisClient
from pipeline.stores.commands import Commands, Script, send
from pipeline.stores.keys import Partitioning, RedisKeys

COUNT_OUTCOMES = Script.file("count_outcomes.lua")
GUARD_PREFIX = "offset:"


@dataclass(frozen=True, slots=True)
class Contribution:
    """The counter increments one event brings to one experiment arm."""

    partition: int  # the user's (and the event's) partition
    source: str  # "<topic>:<partition>" the event was read from
    offset: int
    experiment: str
    variant: str
    counts: Mapping[str, int]


def queue_outcomes(cmds: Commands, keys: RedisKeys, contributions: Sequence[Contribution]) -> None:
    """One guarded ``count_outcomes.lua`` call per (arm, partition, source) of the batch."""
    grouped: dict[tuple[str, str], list[Contribution]] = {}
    for c in contributions:
        key = keys.experiment(c.partition, c.experiment, c.variant)
        grouped.setdefault((key, c.source), []).append(c)
    for (key, source), entries in grouped.items():
        args: list[Any] = [f"{GUARD_PREFIX}{source}"]
        for c in sorted(entries, key=lambda e: e.offset):
            args += [c.offset, len(c.counts)]
            for counter, inc in c.counts.items():
                args += [counter, inc]
        cmds.script(COUNT_OUTCOMES, [key], args)


async def read_arms(
    client: RedisClient,
    keys: RedisKeys,
    partitions: Partitioning,
    experiments: tuple[Experiment, ...],
    *,
    windows: Sequence[int],
    now_ms: int,
) -> dict[tuple[str, str], ArmTotals]:
    """Every arm's sums, exposed users and users eligible for each return window.

    Summed over partitions: a user belongs to one partition, so the partitions' exposed sets
    are disjoint and their sizes add up. A user is eligible for a return window once their
    first exposure is at least that long ago (``ZCOUNT`` of the exposed set by score).
    """
    arms = [(e.name, v.name) for e in experiments for v in e.variants]
    cmds = Commands()
    for name, arm in arms:
        for p in partitions.all():
            cmds.command("HGETALL", keys.experiment(p, name, arm))
            exposed = keys.experiment_exposed(p, name, arm)
            cmds.command("ZCARD", exposed)
            for seconds in windows:
                cmds.command("ZCOUNT", exposed, "-inf", now_ms - seconds * 1000)
    replies = iter(await send(client, cmds) if arms else [])
    out: dict[tuple[str, str], ArmTotals] = {}
    for arm_key in arms:
        totals: dict[str, int] = {}
        users = 0
        eligible = dict.fromkeys(windows, 0)
        for _ in partitions.all():
            for field, value in fields_of(next(replies)).items():
                if not field.startswith(GUARD_PREFIX):
                    totals[field] = totals.get(field, 0) + int(value)
            users += int(next(replies))
            for seconds in windows:
                eligible[seconds] += int(next(replies))
        out[arm_key] = ArmTotals(totals, users, eligible)
    return out


async def read_report(
    client: RedisClient,
    keys: RedisKeys,
    partitions: Partitioning,
    experiments: tuple[Experiment, ...],
    *,
    windows: Sequence[int],
    now_ms: int,
) -> list[dict[str, Any]]:
    """The experiment report as of ``now_ms`` (``recloop experiments report``, the API)."""
    arms = await read_arms(client, keys, partitions, experiments, windows=windows, now_ms=now_ms)
    return report(experiments, arms, windows=windows)


def fields_of(raw: Any) -> dict[str, str]:
    """A ``HGETALL`` reply as text (a dict, or a flat list from ``execute_command``).

    >>> fields_of([b"a", b"1"]) == fields_of({b"a": b"1"}) == {"a": "1"}
    True
    """
    if isinstance(raw, dict):
        return {_text(k): _text(v) for k, v in raw.items()}
    return {_text(raw[i]): _text(raw[i + 1]) for i in range(0, len(raw), 2)}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
