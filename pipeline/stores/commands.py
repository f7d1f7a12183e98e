"""Lua scripts and batches of commands: how recloop talks to Redis, single or cluster.

Every write goes out as a ``Commands`` batch through a *non-transactional* pipeline: one
round trip on a single Redis; on a cluster, redis-py groups the batch by node and sends one
pipeline per node, concurrently. No batch is a ``MULTI``: atomicity is per Lua call, on the
keys of one hash slot (one user, or one partition's index), and every call is written so
that sending it again changes nothing (README "Guarantees").

Scripts are sent as ``EVALSHA``. A server that does not know a script (a restarted master, a
replica promoted by a failover, a fresh cluster node) answers ``NOSCRIPT``: ``send`` then
loads the scripts on every primary and re-sends only the commands that failed, so no command
runs twice. ``MOVED``/``ASK`` redirections are followed by the cluster client itself.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from pipeline.stores.client import RedisClient

log = logging.getLogger(__name__)

_NOSCRIPT_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA-1 (what ``EVALSHA`` names it by)."""

    name: str
    source: str
    sha: str

    @classmethod
    def inline(cls, name: str, source: str) -> Script:
        """A script given as text.

        >>> Script.inline("one", "return 1").sha
        'e0e1f9fabfc9d4800c877a703b823ac0578ff8db'
        """
        return cls(name, source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())

    @classmethod
    def file(cls, name: str) -> Script:
        """A script shipped in ``pipeline/stores/<name>``."""
        text = resources.files("pipeline.stores").joinpath(name).read_text(encoding="utf-8")
        return cls.inline(name, text)


@dataclass(slots=True)
class Commands:
    """Commands to send in one non-transactional pipeline; replies come back in order."""

    _queued: list[tuple[Script | None, tuple[Any, ...]]] = field(default_factory=list)
    _merged: dict[tuple[str, str], int] = field(default_factory=dict)
    _extra: dict[int, list[Any]] = field(default_factory=dict)

    @property
    def queued(self) -> list[tuple[Script | None, tuple[Any, ...]]]:
        """Every command as sent: ``(script or None, arguments)``, merged ones joined."""
        for at, extra in self._extra.items():
            if extra:
                script, args = self._queued[at]
                self._queued[at] = (script, (*args, *extra))
                extra.clear()
        return self._queued

    def __len__(self) -> int:
        return len(self._queued)

    def script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> int:
        """Queue ``EVALSHA`` of ``script`` (all ``keys`` in one slot); the reply's index."""
        self._queued.append((script, (len(keys), *keys, *args)))
        return len(self._queued) - 1

    def command(self, *args: Any) -> int:
        """Queue one plain command (``"ZADD", key, score, member``); the reply's index."""
        self._queued.append((None, args))
        return len(self._queued) - 1

    def merge(self, op: str, key: str, *args: Any) -> None:
        """Queue a variadic ``SADD``/``SREM``/``ZADD``/``ZREM``, merged with earlier ones.

        A batch's index entries of one key go out as one command (one ``SADD`` of every user
        who joins a segment), so a batch costs one command per key, not one per user. Only
        for commands whose order against each other on the key does not matter (distinct
        members).

        >>> cmds = Commands()
        >>> cmds.merge("SADD", "k", "a")
        >>> cmds.merge("ZADD", "z", 1, "a")
        >>> cmds.merge("SADD", "k", "b")
        >>> [args for _, args in cmds.queued]
        [('SADD', 'k', 'a', 'b'), ('ZADD', 'z', 1, 'a')]
        """
        at = self._merged.get((op, key))
        if at is None:
            self._merged[(op, key)] = self.command(op, key, *args)
            self._extra[self._merged[(op, key)]] = []
        else:  # gathered apart and joined once when read: linear in the members, not square
            self._extra[at].extend(args)

    def scripts(self) -> set[Script]:
        """The scripts the batch uses."""
        return {s for s, _ in self.queued if s is not None}


async def load_scripts(client: RedisClient, scripts: Iterable[Script]) -> None:
    """Load ``scripts`` into the script cache of every primary (a cluster) or the server."""
    for script in scripts:
        await client.script_load(script.source)


async def send(client: RedisClient, commands: Commands) -> list[Any]:
    """Send ``commands`` and return their replies in order.

    Raises the first error a command answered (other than ``NOSCRIPT``, which is handled);
    the caller retries the whole batch, which every recloop batch allows.
    """
    queued = commands.queued
    replies: list[Any] = [None] * len(queued)
    todo = list(range(len(queued)))
    for _ in range(_NOSCRIPT_ROUNDS):
        if not todo:
            break
        async with client.pipeline(transaction=False) as pipe:
            for i in todo:
                script, args = queued[i]
                if script is None:
                    pipe.execute_command(*args)
                else:
                    pipe.execute_command("EVALSHA", script.sha, *args)
            results = await pipe.execute(raise_on_error=False)
        missing: list[int] = []
        for i, result in zip(todo, results, strict=True):
            if isinstance(result, NoScriptError):
                missing.append(i)
            elif isinstance(result, Exception):
                raise result
            else:
                replies[i] = result
        if missing:
            scripts = {s for i in missing if (s := queued[i][0])}
            log.warning(
                "redis answered NOSCRIPT (a restarted or new primary): loading scripts again"
                " commands=%d scripts=%s",
                len(missing),
                ",".join(sorted(s.name for s in scripts)),
            )
            await load_scripts(client, scripts)
        todo = missing
    if todo:
        msg = f"Redis kept answering NOSCRIPT for {len(todo)} commands after loading the scripts"
        raise RuntimeError(msg)
    return replies
