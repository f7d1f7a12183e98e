"""Closed-loop A/B experiment: personalised vs non-personalised lists on the live stack.

    .venv/bin/python bench/experiment.py [--duration 240] [--rate 150] [--users 400]

Starts Kafka + Redis, one worker with a 50/50 experiment (control: non-personalised
trending lists; treatment: the default personalised lists), publishes a catalogue and runs
``recloop simulate --closed-loop``: simulated users read their current list from Redis and
choose from it (70 %) by their latent taste, or browse. Then prints ``recloop experiments
report`` and writes ``bench/results/experiment.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import add_common_args, bench_settings, services  # noqa: E402
from pipeline.cli.common import partitioning, with_redis  # noqa: E402
from pipeline.kafka.topics import ensure_topics  # noqa: E402
from pipeline.lists.experiment_report import format_report, report  # noqa: E402
from pipeline.lists.experiments import load_experiments  # noqa: E402
from pipeline.stores.experiments import read_counters  # noqa: E402
from pipeline.stores.keys import RedisKeys  # noqa: E402
from pipeline.tooling.processes import WorkerProcess  # noqa: E402

DECLARATION = {
    "experiments": [
        {
            "name": "personalization",
            "attribution_seconds": 600,
            "variants": [
                {"name": "non_personalized", "share": 0.5, "changes": {"personalized": False}},
                {"name": "personalized", "share": 0.5, "changes": {}},
            ],
        }
    ]
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=240.0)
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "experiment.json")
    add_common_args(parser)
    args = parser.parse_args()

    with services("experiment", keep=args.keep_logs, wait_quiet=args.wait_quiet) as svc:
        declaration = svc.workdir / "experiments.json"
        declaration.write_bytes(orjson.dumps(DECLARATION))
        uid = svc.workdir.name[-8:]
        settings = bench_settings(
            svc,
            "experiment",
            experiments_file=declaration,
            topic_controls=f"bench-exp-{uid}.controls",
        )
        ensure_topics(settings)
        worker = WorkerProcess(settings, log_path=svc.workdir / "worker.log").wait_ready(120)
        sim_log = (svc.workdir / "simulator.log").open("ab")
        try:
            sim = subprocess.run(
                [sys.executable, "-m", "agents", "simulate", "--closed-loop",
                 "--users", str(args.users), "--items", str(args.items), "--rate", str(args.rate),
                 "--duration", str(args.duration), "--seed", str(args.seed)],
                env={**os.environ, **settings.to_env()},
                stdout=sim_log, stderr=subprocess.STDOUT, timeout=args.duration + 120, check=True,
            )  # fmt: skip
            del sim
            time.sleep(3.0)  # let the worker take the last events
        finally:
            worker.stop()
            sim_log.close()
        declared = load_experiments(declaration)
        keys = RedisKeys(settings.redis_namespace)
        parts = partitioning(settings)
        counters, users = with_redis(
            settings, lambda client: read_counters(client, keys, parts, declared)
        )
    rows = report(declared, counters, users)
    print(f"closed loop: {args.users} users, {args.rate}/s for {args.duration:.0f} s")
    print(format_report(rows))
    result = {
        "benchmark": "experiment",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "timestamp": int(time.time()),
        "config": vars(args) | {"out": str(args.out)},
        "report": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
