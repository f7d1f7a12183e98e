"""``recloop demo``: the whole thing on one machine, with lists changing live in the terminal.

Starts (or reuses) the local stack, creates the topics, starts worker processes and the
traffic simulator, then shows a few simulated users' latest events and their recommendation
lists, refreshed every second, until Ctrl-C or ``--duration``. Everything it started is
stopped by PID at the end (a stack that was already running is left running).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import click
import orjson

from pipeline.config import Settings
from pipeline.kafka.topics import ensure_topics
from pipeline.stores.client import SyncRedisClient, sync_redis
from pipeline.stores.keys import RedisKeys
from pipeline.tooling.processes import WorkerProcess
from pipeline.tooling.serve_process import ServeProcess
from pipeline.tooling.simulator import World
from pipeline.tooling.stack import LocalStack

_CLEAR = "\033[H\033[J"


def _age(ms: int) -> str:
    seconds = max(0.0, time.time() - ms / 1000)
    return f"{seconds:.1f}s ago"


def _label(world: World, item_id: str) -> str:
    try:
        item = world.item(item_id)
    except KeyError:
        return item_id
    return f"{item.title} [{'/'.join(item.categories)}]"


def _render(
    client: SyncRedisClient, keys: RedisKeys, world: World, users: list[str], rate: float
) -> str:
    lines = [f"recloop demo: {rate:,.0f} events/s processed   (Ctrl-C to stop)", ""]
    for user_id in users:
        raw = client.get(keys.recs(user_id))
        history = [orjson.loads(h) for h in client.lrange(keys.history(user_id), 0, 2)]
        lines.append(f"user {user_id}")
        for item_id, ts, kind, _weight, completion in history:
            done = f" ({completion:.0%} watched)" if completion is not None else ""
            lines.append(f"   did   {kind:<5} {_label(world, item_id)}{done}  {_age(ts)}")
        if raw:
            doc = orjson.loads(raw)
            lines.append(f"   list  refreshed {_age(doc['generated_ts'])}")
            for rank, entry in enumerate(doc["items"][:5], 1):
                label = _label(world, entry["item_id"])
                lines.append(f"     {rank}. {label:<44} {entry['reason']}")
        lines.append("")
    return "\n".join(lines)


def _processed(workers: list[WorkerProcess]) -> float:
    total = 0.0
    for w in workers:
        try:
            for line in w.metrics().splitlines():
                if line.startswith("recloop_events_total{"):
                    total += float(line.rsplit(" ", 1)[1])
        except OSError:
            continue
    return total


@click.command()
@click.option("--workers", default=2, show_default=True, help="Worker processes to start.")
@click.option("--users", default=300, show_default=True, help="Simulated users.")
@click.option("--items", default=400, show_default=True, help="Simulated catalogue size.")
@click.option("--rate", default=50.0, show_default=True, help="Simulated events per second.")
@click.option("--duration", default=0.0, help="Stop after this many seconds (0: until Ctrl-C).")
@click.option("--show", default=3, show_default=True, help="Users shown live.")
@click.option("--seed", default=7, show_default=True, help="Seed of the simulated world.")
def demo(
    workers: int, users: int, items: int, rate: float, duration: float, show: int, seed: int
) -> None:
    """Run stack + workers + simulator and show recommendations updating live."""
    settings = Settings()
    stack = LocalStack.from_settings(settings)
    started_stack = not stack.status().all_up
    if started_stack:
        click.echo("starting the local stack (Kafka + Redis) ...")
        stack.start()
    settings = settings.model_copy(
        update={"kafka_bootstrap": stack.kafka_bootstrap, "redis_url": stack.redis_url}
    )
    ensure_topics(settings)
    log_dir = Path(settings.stack_dir) / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[WorkerProcess] = []
    console: ServeProcess | None = None
    sim: subprocess.Popen[bytes] | None = None
    stop = {"now": False}

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        stop["now"] = True

    old = signal.signal(signal.SIGTERM, on_signal)
    client = sync_redis(settings.redis_url, mode=settings.redis_cluster)
    try:
        for n in range(workers):
            worker_settings = settings.model_copy(update={"web_port": settings.web_port + n})
            procs.append(WorkerProcess(worker_settings, log_path=log_dir / f"worker-{n}.log"))
        for w in procs:
            w.wait_ready(120)
        click.echo(
            f"{workers} worker(s) ready; metrics at {', '.join(w.url('/metrics') for w in procs)}"
        )
        serve_settings = settings.model_copy(
            update={"api_worker_metrics_urls": ",".join(w.url("/metrics") for w in procs)}
        )
        console = ServeProcess(serve_settings, log_path=log_dir / "serve.log").wait_healthy(60)
        click.echo(f"web console: {console.base_url}/  API: {console.base_url}/v1")
        sim_log = (log_dir / "simulator.log").open("ab")
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agents",
                "simulate",
                "--users",
                str(users),
                "--items",
                str(items),
                "--rate",
                str(rate),
                "--seed",
                str(seed),
            ],
            env={**os.environ, **settings.to_env()},
            stdout=sim_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        keys = RedisKeys(settings.redis_namespace)
        world = World(seed=seed, n_users=users, n_items=items)
        watched: list[str] = []
        began = time.monotonic()
        last_count, last_t = _processed(procs), time.monotonic()
        tty = sys.stdout.isatty()
        while not stop["now"] and (not duration or time.monotonic() - began < duration):
            time.sleep(1.0)
            # follow users who are active right now; replace those who went quiet
            active: dict[str, float] = {}
            for p in range(settings.topic_partitions):
                recent: Any = client.zrevrange(keys.active(p), 0, 20, withscores=True)
                active.update((raw.decode(), float(score)) for raw, score in recent)
            quiet_before = (time.time() - 10) * 1000
            watched = [u for u in watched if active.get(u, 0) >= quiet_before]
            for user_id in active:
                if user_id not in watched and len(watched) < show:
                    watched.append(user_id)
            count, now = _processed(procs), time.monotonic()
            rate_now = (count - last_count) / max(now - last_t, 1e-6)
            last_count, last_t = count, now
            screen = _render(client, keys, world, watched, rate_now)
            screen += f"\nweb console: {console.base_url}/ (live lists, act as a user)"
            click.echo((_CLEAR if tty else "\n") + screen)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
        if sim is not None and sim.poll() is None:
            os.killpg(sim.pid, signal.SIGTERM)
            sim.wait(30)
        if console is not None:
            console.stop()
        for w in procs:
            w.stop()
        client.close()
        if started_stack:
            stack.stop()
        click.echo("demo stopped; logs in " + str(log_dir))
