"""The Redis key layout: a public contract (README "Redis keys"), built in one place.

Every command recloop sends touches one hash slot, so the same layout works on a single
Redis and on a Redis Cluster:

* per-user keys put the user id in braces, a hash tag: all of one user's keys share a slot,
  so one Lua call per user updates them atomically (``recloop:user:{USER_ID}:features``);
* what is not per user is split by the user's Kafka partition ``P`` (Kafka's murmur2 of the
  user id modulo the partition count, ``pipeline.kafka.partitioner``) under a partition hash
  tag: ``recloop:p:{P}:active``, ``recloop:p:{P}:segment:locale:en-GB``... A reader wanting
  a total (segment sizes, experiment counters, active users) adds up the partitions;
* the few global keys (trending lists, the model log and snapshots) are single keys.

Every key starts with the namespace (``Settings.redis_namespace``, default ``recloop``), so
several deployments (or test runs) can share one Redis without seeing each other.

>>> RedisKeys().features("42")
'recloop:user:{42}:features'
>>> RedisKeys().segment(3, "locale", "en-GB")
'recloop:p:{3}:segment:locale:en-GB'
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

KEY_LAYOUT_VERSION = 4  # bump (and document) when a key's layout changes incompatibly
"""2: per-partition index keys (``recloop:p:{P}:...``), the per-user ``meta`` hash.
3: user-level experiment sums: the per-user ``experiment`` hash, the exposed-users sorted
set of each arm (instead of a HyperLogLog), sums of squares and products in the arm hash.
4: item availability (``recloop:items:availability``, its change log, the per-partition
``holders`` index of which lists hold an item); additions only, nothing earlier changed."""


@dataclass(frozen=True, slots=True)
class Partitioning:
    """Which partition (of ``count``) a user's index entries live in.

    ``of`` is Kafka's default partitioner of the user id (injected by the composition root:
    the function lives in ``pipeline.kafka``), so a user's Redis partition is the partition
    of the events topic that carries their events.

    >>> Partitioning(4, lambda user: len(user) % 4).of("abc")
    3
    """

    count: int
    of: Callable[[str], int]

    def all(self) -> range:
        """Every partition number."""
        return range(self.count)


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Names of every key recloop reads or writes."""

    namespace: str = "recloop"

    # --------------------------------------------------------------------- per user
    def user(self, user_id: str, kind: str) -> str:
        """``<ns>:user:{USER_ID}:<kind>``."""
        return f"{self.namespace}:user:{{{user_id}}}:{kind}"

    def features(self, user_id: str) -> str:
        """Hash of the user's features (fields documented in README)."""
        return self.user(user_id, "features")

    def recs(self, user_id: str) -> str:
        """The user's latest recommendation v1 document (JSON string)."""
        return self.user(user_id, "recs")

    def history(self, user_id: str) -> str:
        """List of the last N interactions, newest first (JSON arrays)."""
        return self.user(user_id, "history")

    def excluded(self, user_id: str) -> str:
        """Sorted set of items the user interacted with (not recommended again), by ts."""
        return self.user(user_id, "excluded")

    def events(self, user_id: str) -> str:
        """Sorted set of the user's recently applied event ids (de-duplication), by ts."""
        return self.user(user_id, "events")

    def controls(self, user_id: str) -> str:
        """Hash of the user's controls: mutes, not-interested, declared interests, opt-out."""
        return self.user(user_id, "controls")

    def meta(self, user_id: str) -> str:
        """Hash of the user's write bookkeeping: ``version``, the owed refresh (``owed``)."""
        return self.user(user_id, "meta")

    def experiment_user(self, user_id: str) -> str:
        """Hash of the user's experiment arm: latest list shown, first exposure, values."""
        return self.user(user_id, "experiment")

    def user_keys(self, user_id: str) -> list[str]:
        """Every per-user key (what ``forget`` deletes)."""
        return [
            self.features(user_id),
            self.history(user_id),
            self.excluded(user_id),
            self.events(user_id),
            self.recs(user_id),
            self.controls(user_id),
            self.meta(user_id),
            self.experiment_user(user_id),
        ]

    # ---------------------------------------------------------------- per partition
    def partition(self, partition: int, kind: str) -> str:
        """``<ns>:p:{P}:<kind>``: a key of partition ``P``'s hash slot."""
        return f"{self.namespace}:p:{{{partition}}}:{kind}"

    def active(self, partition: int) -> str:
        """Sorted set user_id -> last processing time (ms) of an event."""
        return self.partition(partition, "active")

    def owed(self, partition: int) -> str:
        """Sorted set ``[user_id, event_id, ts]`` -> due (ms): owed refreshes, for rescue."""
        return self.partition(partition, "owed")

    def dormant(self, partition: int) -> str:
        """Sorted set user_id -> time (ms) the user was found dormant."""
        return self.partition(partition, "dormant")

    def forgotten(self, partition: int) -> str:
        """Sorted set forget token -> forget time (ms) of users forgotten lately."""
        return self.partition(partition, "forgotten")

    def segments(self, partition: int) -> str:
        """Set of the ``<dimension>:<value>`` segments that have a set in the partition."""
        return self.partition(partition, "segments")

    def segment(self, partition: int, dimension: str, value: str) -> str:
        """Set of the partition's user ids in one segment (``locale``/``en-GB``)."""
        return self.partition(partition, f"segment:{dimension}:{value}")

    def experiment(self, partition: int, name: str, variant: str) -> str:
        """Hash of an experiment arm's sums over one partition's users (and offset guards)."""
        return self.partition(partition, f"experiment:{name}:{variant}")

    def experiment_exposed(self, partition: int, name: str, variant: str) -> str:
        """Sorted set of one partition's users exposed in an arm -> first exposure (ms)."""
        return self.partition(partition, f"experiment:{name}:{variant}:exposed")

    def holders(self, partition: int, item_id: str) -> str:
        """Sorted set of the partition's users whose stored list holds the item -> when (ms).

        >>> RedisKeys().holders(3, "film-1")
        'recloop:p:{3}:holders:film-1'
        """
        return self.partition(partition, f"holders:{item_id}")

    def forget_token(self, user_id: str) -> str:
        """What the forget marker holds instead of the user id: a keyed hash of it.

        The marker must outlive the user's data (README "Privacy") without naming them.

        >>> len(RedisKeys().forget_token("42"))
        32
        """
        digest = hashlib.blake2b(user_id.encode(), digest_size=16, key=self.namespace.encode()[:64])
        return digest.hexdigest()

    # ----------------------------------------------------------------------- global
    @property
    def model_log(self) -> str:
        """Stream of learn records, one entry per worker batch."""
        return f"{self.namespace}:model:log"

    @property
    def model_version(self) -> str:
        """Counter of snapshots written."""
        return f"{self.namespace}:model:version"

    @property
    def model_snapshot_latest(self) -> str:
        """Version number of the newest snapshot."""
        return f"{self.namespace}:model:snapshot:latest"

    @property
    def model_snapshot_lock(self) -> str:
        """Short lock: one snapshot writer per interval."""
        return f"{self.namespace}:model:snapshot:lock"

    def model_snapshot(self, version: int) -> str:
        """A versioned model snapshot's header (zlib-compressed JSON)."""
        return f"{self.namespace}:model:snapshot:{version}"

    def model_snapshot_rows(self, version: int, part: int) -> str:
        """Part ``part`` of a versioned snapshot's neighbour rows (format 5, binary)."""
        return f"{self.namespace}:model:snapshot:{version}:rows:{part}"

    @property
    def item_availability(self) -> str:
        """Hash item_id -> availability window of restricted items (item v1.1)."""
        return f"{self.namespace}:items:availability"

    @property
    def availability_log(self) -> str:
        """Stream of availability changes, read by every worker (fan-out within 100 ms)."""
        return f"{self.namespace}:items:availability:log"

    def trending(self, segment: str) -> str:
        """Sorted set of trending items in a segment (``global``, ``locale:en-GB``, ...)."""
        return f"{self.namespace}:trending:{segment}"
