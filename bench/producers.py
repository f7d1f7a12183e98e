"""Producers: events per CPU-second of ``recloop simulate`` and of ``EventProducer`` alone.

    .venv/bin/python bench/producers.py [--runs 3] [--rate 1000] [--duration 21] [--events 100000]

What is measured (own Kafka and Redis on free loopback ports, 2 cores shared):

* **simulate**: ``recloop simulate`` as a subprocess at ``--rate`` (1,000/s, the freshness
  benchmark's rate, below what either client can send, so the run is paced and ends on
  time); from its first to its last progress line (one each 5 s), events sent divided by
  the process's CPU seconds (user + system, all threads, from ``/proc``). Start-up
  (imports, the catalogue) is outside that window.
* **EventProducer**: ``send_event`` of pre-built event documents (validated and completed
  like every send) then ``flush``, in this process; events divided by this process's CPU
  seconds over the loop and the flush (the client's I/O threads included).

Each is run ``--runs`` times; the table shows the median and the range. Events per
CPU-second is what a producer costs; it is far steadier than events per wall-second on a
machine whose other core is busy with the broker.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

from harness.machine import contention_note, cpu_seconds
from harness.output import log, table
from harness.results import write_results
from harness.runs import add_runs_arg
from harness.services import add_common_args, bench_settings, services
from harness.stats import spread

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics


def simulate_run(settings: Settings, rate: float, duration: float) -> dict[str, Any]:
    """One ``recloop simulate`` run at ``rate``; events per CPU-second between progress lines."""
    env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "agents", "simulate", "--users", "2000", "--items", "500",
           "--rate", str(rate), "--duration", str(duration), "--seed", "3"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    marks: list[tuple[int, float, float]] = []
    try:
        for line in proc.stdout:
            if line.startswith("simulate: sent="):
                sent = int(line.split()[1].partition("=")[2])
                marks.append((sent, cpu_seconds(proc.pid), time.monotonic()))
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or len(marks) < 2:
        raise RuntimeError(f"simulate failed rc={proc.returncode} marks={marks}")
    (s0, c0, t0), (s1, c1, t1) = marks[0], marks[-1]
    n, cpu, wall = s1 - s0, c1 - c0, t1 - t0
    return {"events": n, "cpu_seconds": cpu, "wall_seconds": wall,
            "events_per_cpu_s": n / cpu, "events_per_s": n / wall}  # fmt: skip


def producer_run(settings: Settings, n: int) -> dict[str, Any]:
    """``EventProducer.send_event`` of ``n`` events then ``flush``, CPU of this process."""
    now = int(time.time() * 1000)
    docs = [{"type": "watch", "user_id": f"user-{i % 5000}", "item_id": f"item-{i % 700}",
             "watch_seconds": 30.0, "duration_seconds": 600.0, "ts": now}
            for i in range(n)]  # fmt: skip
    with EventProducer(settings) as producer:
        producer.click("warm-up", "item-0")
        producer.flush()
        cpu0, t0 = time.process_time(), time.monotonic()
        for doc in docs:
            producer.send_event(doc)
        producer.flush()
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    return {"events": n, "cpu_seconds": cpu, "wall_seconds": wall,
            "events_per_cpu_s": n / cpu, "events_per_s": n / wall}  # fmt: skip


FIGURES = ("events_per_cpu_s", "events_per_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runs_arg(parser)
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--duration", type=float, default=21.0)
    parser.add_argument("--events", type=int, default=100_000)
    add_common_args(parser)
    args = parser.parse_args()
    with services("producers", keep=args.keep_logs, wait_quiet=args.wait_quiet) as svc:
        settings = bench_settings(svc, "producers")
        ensure_topics(settings)
        started = time.monotonic()
        sim, prod = [], []
        for k in range(args.runs):
            log(f"simulate run {k + 1}/{args.runs} ({args.duration:.0f} s)")
            sim.append(simulate_run(settings, args.rate, args.duration))
            log(f"EventProducer run {k + 1}/{args.runs} ({args.events:,} events)")
            prod.append(producer_run(settings, args.events))
        contention = svc.contention(started)
    result = {
        name: {"runs": runs, **{k: spread(r[k] for r in runs) for k in FIGURES}}
        for name, runs in (("simulate", sim), ("event_producer", prod))
    }
    rows = []
    for name, part in (("recloop simulate", result["simulate"]),
                       ("EventProducer.send_event + flush", result["event_producer"])):  # fmt: skip
        cpu, wall = part["events_per_cpu_s"], part["events_per_s"]
        rows.append([name, f"{cpu['median']:,.0f}", f"{cpu['min']:,.0f}-{cpu['max']:,.0f}",
                     f"{wall['median']:,.0f}"])  # fmt: skip
    print(table(["what", "events per CPU-second (median)", "range", "events/s wall (median)"],
                rows, title=f"producers ({args.runs} runs)"))  # fmt: skip
    print(contention_note(contention))
    path = write_results("producers", {**result, "contention": contention, "args": vars(args)})
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
