"""What a Redis namespace holds: memory in use, bytes per per-user key kind, shared keys.

Per-user key kinds come from ``RedisKeys.user_keys`` (a kind added to the layout is measured
without a change here); everything else in the namespace is a shared key.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import redis

from pipeline.stores.keys import RedisKeys

from .stats import percentile


def redis_used(client: redis.Redis) -> dict[str, int]:
    """``INFO memory``: used_memory, its dataset and its overhead, in bytes."""
    info = client.info("memory")
    return {
        k: int(info[k])
        for k in ("used_memory", "used_memory_dataset", "used_memory_overhead")
        if k in info
    }


def _length(pipe: Any, kind: str) -> Any:
    return {
        "hash": pipe.hlen,
        "list": pipe.llen,
        "zset": pipe.zcard,
        "string": pipe.strlen,
        "set": pipe.scard,
    }.get(kind, pipe.exists)


def sample_user_keys(client: redis.Redis, keys: RedisKeys, users: list[str]) -> dict[str, Any]:
    """``MEMORY USAGE``, type, encoding and length of every per-user key kind over ``users``."""
    kinds: dict[str, dict[str, Any]] = {}
    pipe = client.pipeline(transaction=False)
    plan = []
    for user in users:
        for key in keys.user_keys(user):
            kind = key.rsplit(":", 1)[1]
            plan.append((kind, key))
            pipe.memory_usage(key, samples=0)
            pipe.type(key)
            pipe.object("encoding", key)
    replies = pipe.execute(raise_on_error=False)
    lengths_pipe = client.pipeline(transaction=False)
    length_plan = []
    for i, (kind, key) in enumerate(plan):
        usage, typ, enc = replies[3 * i : 3 * i + 3]
        entry = kinds.setdefault(
            kind, {"bytes": [], "missing": 0, "encodings": Counter(), "types": Counter()}
        )
        if usage is None or isinstance(usage, Exception):
            entry["missing"] += 1
            continue
        entry["bytes"].append(int(usage))
        t = typ.decode() if isinstance(typ, bytes) else str(typ)
        entry["types"][t] += 1
        entry["encodings"][enc.decode() if isinstance(enc, bytes) else str(enc)] += 1
        length_plan.append(kind)
        _length(lengths_pipe, t)(key)
    lens: dict[str, list[int]] = defaultdict(list)
    for kind, n in zip(length_plan, lengths_pipe.execute(), strict=True):
        lens[kind].append(int(n))
    out = {}
    for kind, e in kinds.items():
        b = e["bytes"]
        out[kind] = {
            "sampled": len(users),
            "present": len(b),
            "missing": e["missing"],
            "mean_bytes": sum(b) / len(b) if b else 0.0,
            "p50_bytes": percentile(b, 50),
            "max_bytes": max(b) if b else 0,
            "type": ",".join(e["types"]) or "(absent)",
            "encoding": ",".join(k for k, _ in e["encodings"].most_common()) or "-",
            "mean_length": sum(lens[kind]) / len(lens[kind]) if lens[kind] else 0.0,
        }
    return out


def shared_keys(client: redis.Redis, ns: str) -> list[dict[str, Any]]:
    """Every key of the namespace that is not per user (model log, snapshots, trending, active
    set, segment sets, ...), largest first; robust to keys added to the layout later."""
    user_prefix = f"{ns}:user:".encode()
    rows = []
    for key in client.scan_iter(match=f"{ns}:*", count=10_000):
        if key.startswith(user_prefix):
            continue
        usage = client.memory_usage(key, samples=0) or 0
        rows.append({"key": key.decode(), "bytes": int(usage), "type": client.type(key).decode()})
    rows.sort(key=lambda r: -r["bytes"])
    return rows


def count_user_keys(client: redis.Redis, ns: str) -> Counter[str]:
    """How many keys of each per-user kind the namespace holds."""
    counts: Counter[str] = Counter()
    for key in client.scan_iter(match=f"{ns}:user:*", count=10_000):
        counts[key.rsplit(b":", 1)[1].decode()] += 1
    return counts
