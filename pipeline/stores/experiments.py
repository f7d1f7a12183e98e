"""Experiment counters in Redis: what the worker adds, exactly once, and the report reads.

Counters are kept per arm *and partition* (``recloop:p:{P}:experiment:<name>:<variant>``):
a batch's users live in many hash slots, and no command may span two, so a batch cannot
update one global hash together with its users' de-duplication sets. Exactly-once comes
from Kafka offsets instead:

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
event whose user write never happened (a batch dead-lettered twice) is the only drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


async def read_counters(
    client: RedisClient,
    keys: RedisKeys,
    partitions: Partitioning,
    experiments: tuple[Experiment, ...],
) -> tuple[dict[tuple[str, str], dict[str, int]], dict[tuple[str, str], int]]:
    """Outcome counters and exposed-user counts of every arm, summed over partitions.

    A user belongs to one partition, so the exposed-user estimates of the partitions are of
    disjoint sets and add up.
    """
    arms = [(e.name, v.name) for e in experiments for v in e.variants]
    cmds = Commands()
    for name, arm in arms:
        for p in partitions.all():
            cmds.command("HGETALL", keys.experiment(p, name, arm))
            cmds.command("PFCOUNT", keys.experiment_users(p, name, arm))
    replies = iter(await send(client, cmds) if arms else [])
    counters: dict[tuple[str, str], dict[str, int]] = {}
    users: dict[tuple[str, str], int] = {}
    for arm_key in arms:
        totals: dict[str, int] = {}
        exposed = 0
        for _ in partitions.all():
            raw, n_users = next(replies), next(replies)
            for field, value in _pairs(raw):
                if not field.startswith(GUARD_PREFIX):
                    totals[field] = totals.get(field, 0) + int(value)
            exposed += int(n_users)
        counters[arm_key] = totals
        users[arm_key] = exposed
    return counters, users


def _pairs(raw: Any) -> list[tuple[str, bytes]]:
    """``HGETALL`` as ``(field, value)`` pairs (a dict, or a flat list from ``execute_command``)."""
    if isinstance(raw, dict):
        return [(k.decode() if isinstance(k, bytes) else k, v) for k, v in raw.items()]
    return [(raw[i].decode(), raw[i + 1]) for i in range(0, len(raw), 2)]
