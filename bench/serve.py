"""Serve: throughput and latency of one ``recloop serve`` process on loopback.

    .venv/bin/python bench/serve.py [--users 10000] [--duration 10] [--rate 2000]

What is measured (one serve process, the load generator in this process, 2 cores shared):

* **reads, max**: ``GET /v1/users/{id}/recommendations`` for random users with a stored
  20-item list, closed loop on 64 keep-alive connections: requests/s and latency.
* **reads at a fixed rate** (``--rate``, 2,000/s): open loop, each request sent at its
  scheduled time; latency counts from the schedule, so a stalled server cannot hide its
  queue (no coordinated omission).
* **writes**: ``POST /v1/events`` with batches of 100 valid events, closed loop on 8
  connections; events/s accepted, i.e. validated, produced and acknowledged by Kafka
  (``acks=all``) before the ``202``.

The lists are written to Redis by this script in the exact recommendation v1 bytes a worker
writes (``encode_recommendation``): the API only reads them, so no worker runs here and the
numbers are the serve process's alone. The load generator is a minimal asyncio HTTP/1.1
client (uvloop), far cheaper per request than a general-purpose client, but it still shares
the machine's 2 cores with the server, Redis and Kafka. Goals: >= 5,000 reads/s, p99 < 10 ms
at 2,000 reads/s, >= 10,000 events/s accepted in batches of 100.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis
import uvloop
from harness.machine import contention_note, cpu_seconds
from harness.output import log, table, verdict
from harness.results import write_results
from harness.services import add_common_args, bench_settings, services
from harness.stats import summary

from pipeline.config import Settings
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.probes import free_port
from pipeline.tooling.serve_process import ServeProcess
from schemas.validation import encode_recommendation

READ_GOAL = 5_000.0
P99_GOAL_MS = 10.0
WRITE_GOAL = 10_000.0


class Conn:
    """One keep-alive HTTP/1.1 connection: send a request, read one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def get_request(host: str, user: str) -> bytes:
    return (f"GET /v1/users/{user}/recommendations HTTP/1.1\r\nHost: {host}\r\n\r\n").encode()


def post_request(host: str, body: bytes) -> bytes:
    return (
        f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def closed_loop(
    host: str, port: int, conns: int, duration: float, make: Callable[[], bytes]
) -> dict[str, Any]:
    """``conns`` connections each sending back to back for ``duration`` seconds."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    pool = [await Conn.open(host, port) for _ in range(conns)]
    end = time.perf_counter() + duration

    async def run(conn: Conn) -> None:
        while time.perf_counter() < end:
            raw = make()
            t = time.perf_counter()
            status, _ = await conn.request(raw)
            latencies.append((time.perf_counter() - t) * 1000)
            statuses[str(status)] = statuses.get(str(status), 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(run(c) for c in pool))
    elapsed = time.perf_counter() - started
    for c in pool:
        c.close()
    return {"requests": len(latencies), "seconds": elapsed, "per_s": len(latencies) / elapsed,
            "latency_ms": summary(latencies), "statuses": statuses}  # fmt: skip


async def open_loop(
    host: str, port: int, conns: int, rate: float, duration: float, make: Callable[[], bytes]
) -> dict[str, Any]:
    """Requests scheduled at ``rate``/s over ``conns`` connections; latency from schedule."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    pool = [await Conn.open(host, port) for _ in range(conns)]
    interval = conns / rate
    t0 = time.perf_counter() + 0.05
    n_each = int(duration * rate / conns)

    async def run(i: int, conn: Conn) -> None:
        for k in range(n_each):
            scheduled = t0 + (k + i / conns) * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status, _ = await conn.request(make())
            latencies.append((time.perf_counter() - scheduled) * 1000)
            statuses[str(status)] = statuses.get(str(status), 0) + 1

    await asyncio.gather(*(run(i, c) for i, c in enumerate(pool)))
    elapsed = time.perf_counter() - t0
    for c in pool:
        c.close()
    per_s = len(latencies) / elapsed
    return {"requests": len(latencies), "seconds": elapsed, "per_s": per_s, "target_per_s": rate,
            "latency_ms": summary(latencies), "statuses": statuses}  # fmt: skip


def seed_lists(settings: Settings, users: int, items: int = 2_000) -> list[str]:
    """Store a 20-item list per user, in the bytes a worker writes."""
    keys = RedisKeys(settings.redis_namespace)
    client = redis.Redis.from_url(settings.redis_url)
    rng = random.Random(7)
    ids = [f"user-{n}" for n in range(users)]
    now = int(time.time() * 1000)
    with client.pipeline(transaction=False) as pipe:
        for n, user in enumerate(ids):
            entries = [(f"item-{rng.randrange(items)}", 1.0 - k / 20, "because you like Comedy")
                       for k in range(20)]  # fmt: skip
            doc = encode_recommendation(user, entries, generated_ts=now, trigger_event_id=f"e{n}",
                                        trigger_ts=now, model_version="knn/bench")  # fmt: skip
            pipe.set(keys.recs(user), doc, ex=3_600)
            if n % 1_000 == 999:
                pipe.execute()
        pipe.execute()
    client.close()
    return ids


def event_batch(rng: random.Random, users: list[str], n: int = 100) -> bytes:
    return orjson.dumps([
        {"type": "watch", "user_id": rng.choice(users), "item_id": f"item-{rng.randrange(2000)}",
         "watch_seconds": 300.0, "duration_seconds": 600.0}
        for _ in range(n)
    ])  # fmt: skip


async def measure(
    serve: ServeProcess, users: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    host, port = serve.settings.api_host, serve.settings.api_port
    rng = random.Random(11)
    pid = serve.proc.pid

    async def with_cpu(run: Any) -> dict[str, Any]:
        """Adds the serve process's CPU seconds per request and the rate one core allows."""
        before = cpu_seconds(pid)
        out: dict[str, Any] = await run
        used = cpu_seconds(pid) - before
        out["serve_cpu_seconds"] = used
        out["serve_cpu_ms_per_request"] = 1000 * used / max(1, out["requests"])
        out["per_s_per_serve_core"] = out["requests"] / used if used > 0 else None
        return out

    def read() -> bytes:
        return get_request(host, rng.choice(users))

    result: dict[str, Any] = {}
    if not args.writes_only:
        log("warm-up")
        await closed_loop(host, port, 16, 2.0, read)
        log(f"reads, closed loop, 64 connections, {args.duration:.0f} s")
        result["reads_max"] = await with_cpu(closed_loop(host, port, 64, args.duration, read))
        log(f"reads, open loop at {args.rate:,.0f}/s, {args.duration:.0f} s")
        result["reads_at_rate"] = await with_cpu(
            open_loop(host, port, 32, args.rate, args.duration, read)
        )
    bodies = [event_batch(rng, users) for _ in range(200)]
    log("event batches of 100 (warm-up)")
    await closed_loop(host, port, 4, 2.0, lambda: post_request(host, rng.choice(bodies)))
    log(f"event batches of 100, closed loop, 8 connections, {args.duration:.0f} s")
    writes = await with_cpu(
        closed_loop(host, port, 8, args.duration, lambda: post_request(host, rng.choice(bodies)))
    )
    writes["events_per_s"] = writes["per_s"] * 100
    if writes["per_s_per_serve_core"]:
        writes["events_per_s_per_serve_core"] = writes["per_s_per_serve_core"] * 100
    result["writes"] = writes
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2_000.0)
    parser.add_argument("--writes-only", action="store_true", help="measure POST /v1/events only")
    add_common_args(parser)
    args = parser.parse_args()
    with services("serve", keep=args.keep_logs, wait_quiet=args.wait_quiet) as svc:
        settings = bench_settings(svc, "serve", api_port=free_port(),
                                  topic_controls=f"bench-serve-{free_port()}.controls")  # fmt: skip
        ensure_topics(settings)
        users = seed_lists(settings, args.users)
        serve = ServeProcess(settings, log_path=svc.workdir / "serve.log").wait_healthy(60)
        try:
            started = time.monotonic()
            result = uvloop.run(measure(serve, users, args))
            contention = svc.contention(started)
        finally:
            serve.stop()
    w = result["writes"]
    checks = {"events_per_s": w["events_per_s"] >= WRITE_GOAL}
    rows: list[list[str]] = []
    parts: list[tuple[dict[str, Any], int]] = []
    if "reads_max" in result:
        rm, rr = result["reads_max"], result["reads_at_rate"]
        checks["reads_per_s"] = rm["per_s"] >= READ_GOAL
        checks["p99_at_rate_ms"] = rr["latency_ms"]["p99"] < P99_GOAL_MS
        rows += [
            ["GET recommendations, max (64 conns)", f"{rm['per_s']:,.0f} req/s",
             f"{rm['latency_ms']['p50']:.2f}", f"{rm['latency_ms']['p99']:.2f}",
             f">= {READ_GOAL:,.0f}/s {verdict(checks['reads_per_s'])}"],
            [f"GET recommendations at {args.rate:,.0f}/s", f"{rr['per_s']:,.0f} req/s",
             f"{rr['latency_ms']['p50']:.2f}", f"{rr['latency_ms']['p99']:.2f}",
             f"p99 < {P99_GOAL_MS:.0f} ms {verdict(checks['p99_at_rate_ms'])}"],
        ]  # fmt: skip
        parts += [(rm, 1), (rr, 1)]
    rows.append(
        ["POST /v1/events, batches of 100 (8 conns)", f"{w['events_per_s']:,.0f} events/s",
         f"{w['latency_ms']['p50']:.2f}", f"{w['latency_ms']['p99']:.2f}",
         f">= {WRITE_GOAL:,.0f}/s {verdict(checks['events_per_s'])}"]
    )  # fmt: skip
    parts.append((w, 100))
    for row, (part, unit) in zip(rows, parts, strict=True):
        per_core = part.get("per_s_per_serve_core")
        row.insert(2, f"{part['serve_cpu_ms_per_request'] / unit:.3f}")
        row.insert(3, "-" if not per_core else f"{per_core * unit:,.0f}/s")
    print(table(["what", "throughput", "serve CPU ms/item", "one serve core allows", "p50 ms",
                 "p99 ms", "goal"], rows, title="serve (1 process)"))  # fmt: skip
    print(contention_note(contention))
    bad = {
        k: v for r in result.values() for k, v in r["statuses"].items() if k not in ("200", "202")
    }
    if bad:
        print(f"non-2xx responses: {bad}")
    name = "serve_writes" if args.writes_only else "serve"
    path = write_results(name, {**result, "checks": checks, "contention": contention,
                                   "args": vars(args)})  # fmt: skip
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
