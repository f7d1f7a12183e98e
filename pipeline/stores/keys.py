"""The Redis key layout: a public contract (README "Redis keys"), built in one place.

Per-user keys put the user id in braces, a Redis Cluster hash tag: all of one user's keys
live in one slot, so a per-user Lua script can update them atomically on a cluster too.
Every key starts with the namespace (``Settings.redis_namespace``, default ``recloop``), so
several deployments (or test runs) can share one Redis without seeing each other.

>>> RedisKeys().features("42")
'recloop:user:{42}:features'
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_LAYOUT_VERSION = 1  # bump (and document) when a key's layout changes incompatibly


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Names of every key recloop reads or writes."""

    namespace: str = "recloop"

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

    def user_keys(self, user_id: str) -> list[str]:
        """Every per-user key (what ``forget`` deletes)."""
        return [
            self.features(user_id),
            self.history(user_id),
            self.excluded(user_id),
            self.events(user_id),
            self.recs(user_id),
            self.controls(user_id),
        ]

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

    @property
    def active_users(self) -> str:
        """Sorted set user_id -> last processing time (ms) of an event."""
        return f"{self.namespace}:active"

    @property
    def owed_refreshes(self) -> str:
        """Sorted set user_id -> time (ms) by which their list should have been refreshed."""
        return f"{self.namespace}:refresh:owed"

    @property
    def owed_triggers(self) -> str:
        """Hash user_id -> the event (``"<event_id> <ts>"``) an owed refresh must reflect."""
        return f"{self.namespace}:refresh:trigger"

    @property
    def dormant_users(self) -> str:
        """Sorted set user_id -> time (ms) the user was found dormant."""
        return f"{self.namespace}:dormant"

    def segment(self, dimension: str, value: str) -> str:
        """Set of the user ids in one segment (``lifecycle``/``new``, ``locale``/``en-GB``)."""
        return f"{self.namespace}:segment:{dimension}:{value}"

    def experiment(self, name: str, variant: str) -> str:
        """Hash of an experiment arm's outcome counters (exposures, actions, hits, ...)."""
        return f"{self.namespace}:experiment:{name}:{variant}"

    def experiment_users(self, name: str, variant: str) -> str:
        """HyperLogLog of the users exposed in an experiment arm."""
        return f"{self.namespace}:experiment:{name}:{variant}:users"

    def model_snapshot(self, version: int) -> str:
        """A versioned model snapshot (zlib-compressed JSON)."""
        return f"{self.namespace}:model:snapshot:{version}"

    def trending(self, segment: str) -> str:
        """Sorted set of trending items in a segment (``global``, ``locale:en-GB``, ...)."""
        return f"{self.namespace}:trending:{segment}"
