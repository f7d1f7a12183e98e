"""Snapshot benchmark: what writing and loading a model snapshot costs a worker, and its loop.

    make bench-snapshot                                  # 1M items after 5M events, defaults
    .venv/bin/python bench/snapshot.py --items 100000 --events 1000000   # a quicker look
    .venv/bin/python bench/snapshot.py --variants format5,format4         # with the old format

In-process, no Redis (the stored bytes are kept in memory): the models learn the scale
benchmark's traffic with the shipped defaults (``bench/scale_traffic.py``; a fresh process
per variant, importing ``pipeline`` from the variant's tree), then two snapshots are taken the
way a worker takes them (the first of a process, "cold", and the next, "warm": what every
later one costs), inside a running asyncio loop whose 5 ms ticker measures how late it
fires:

* ``copy``: what runs on the event loop between the sync and the write (format 5:
  ``freeze``, array copies into buffers touched beforehand in a thread; format 4:
  ``models_to_dict``, the whole document);
* ``build``: the rest, off the loop (format 5: each neighbour part cut, then the header
  encoded and compressed, in a thread; format 4: the document encoded and compressed in a
  thread);
* the loop's worst lateness while the snapshot is taken (the copy included) and its
  lateness over the thread part alone (the GIL shared with the builder);
* stored bytes, parts, and the RSS the first snapshot adds at its peak (copies, document,
  and here all the stored bytes, which a worker writes part by part instead);
* ``restore``: decoding and ``models_from_dict``, what a starting worker does.

"format4" is main before format 5 (``FORMAT4_COMMIT``), extracted with ``git archive``.
Timing: ~12 min per variant at 1M items / 5M events on a quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
FORMAT4_COMMIT = "e96ff06"  # main before snapshots became format 5 (issue #16)
TICK_S = 0.005


class PeakRss(threading.Thread):
    """The process's largest RSS (MiB) while it runs, sampled every 20 ms."""

    def __init__(self, rss_mib: Any) -> None:
        super().__init__(daemon=True)
        self.rss_mib, self.peak, self.done = rss_mib, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, self.rss_mib())


async def _ticker(lateness: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """Record (when, how late) for every tick of a 5 ms timer."""
    due = time.perf_counter() + TICK_S
    while not stop.is_set():
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        now = time.perf_counter()
        lateness.append((now, max(0.0, now - due)))
        due = now + TICK_S


async def _take(models: Any, format5: bool) -> tuple[dict[str, Any], bytes, list[bytes]]:
    """One snapshot as a worker takes it, timed; the stored header and parts."""
    lateness: list[tuple[float, float]] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lateness, stop))
    await asyncio.sleep(0.05)
    started = t0 = time.perf_counter()
    c0 = time.process_time()
    if format5:
        from pipeline.model.snapshot import arena_buffers, freeze
        from pipeline.stores.codec import encode_header, encode_rows

        buffers = await asyncio.to_thread(arena_buffers, models)  # before the sync
        t0, c0 = time.perf_counter(), time.process_time()
        frozen = freeze(models, buffers)  # on the loop
        del buffers
        t1, c1 = time.perf_counter(), time.process_time()
        parts: list[bytes] = []
        rows = entries = 0
        it = frozen.row_parts()
        while (part := await asyncio.to_thread(next, it, None)) is not None:
            parts.append(await asyncio.to_thread(encode_rows, part))
            rows, entries = rows + int(part.rows.shape[0]), entries + part.entries
        summary = {"parts": len(parts), "rows": rows, "entries": entries}
        header = await asyncio.to_thread(lambda: encode_header(frozen.header(), summary))
        del frozen
    else:
        from pipeline.model.snapshot import models_to_dict
        from pipeline.stores.codec import encode_snapshot

        doc = models_to_dict(models)  # on the loop
        t1, c1 = time.perf_counter(), time.process_time()
        header, parts = await asyncio.to_thread(encode_snapshot, doc), []
        del doc
    t2, c2 = time.perf_counter(), time.process_time()
    stop.set()
    await ticker
    late_all = max((late for _, late in lateness if started <= _ <= t2 + 0.05), default=0.0)
    late_thread = [late for when, late in lateness if t1 + 0.01 < when <= t2]
    late_thread.sort()
    return (
        {
            "prefault_s": t0 - started, "copy_s": t1 - t0, "copy_cpu_s": c1 - c0,
            "build_s": t2 - t1, "build_cpu_s": c2 - c1,
            "loop_late_max_s": late_all,
            "loop_late_during_build_max_s": late_thread[-1] if late_thread else 0.0,
            "loop_late_during_build_p99_s": (
                late_thread[int(0.99 * (len(late_thread) - 1))] if late_thread else 0.0
            ),
            "ticks_during_build": len(late_thread),
        },
        header,
        parts,
    )  # fmt: skip


def run_one(tree: str, items: int, events: int, users: int, seed: int) -> dict[str, Any]:
    """Learn, snapshot, restore (in the child process, ``pipeline`` from ``tree``)."""
    sys.path.insert(0, tree)
    sys.path.insert(1, str(BENCH))
    from common import rss_mib
    from scale import traffic_shape
    from scale_traffic import Traffic, record_args

    import pipeline
    from pipeline.model.catalog import ItemInfo
    from pipeline.model.models import ModelParams, SharedModels
    from pipeline.model.record import LearnRecord
    from pipeline.model.snapshot import models_from_dict
    from pipeline.stores.codec import decode_snapshot

    assert Path(pipeline.__file__).is_relative_to(tree), pipeline.__file__
    format5 = hasattr(sys.modules["pipeline.model.snapshot"], "freeze")
    params = ModelParams()
    traffic = Traffic(n_items=items, n_users=users, seed=seed, **traffic_shape({}, params))
    models = SharedModels(params)
    for item_id, cats, duration, published, title in traffic.item_infos():
        models.upsert_item(ItemInfo(item_id, cats, duration, published, None, title))
    t = time.perf_counter()
    for start in range(0, events, 500):
        models.apply_all([LearnRecord(*record_args(e)) for e in traffic.next_batch(500)])
        if start % 500_000 == 0:
            print(f"  learned {start:,} events", file=sys.stderr, flush=True)
    learn_s = time.perf_counter() - t
    gc.collect()
    pairs = int(models.cooc.table.lengths().sum())
    before = rss_mib()
    peak = PeakRss(rss_mib)
    peak.start()
    out, header, parts = asyncio.run(_take(models, format5))
    peak.done.set()
    peak.join()
    del header, parts
    # the second snapshot of the process: what every snapshot after a worker's first costs
    warm, header, parts = asyncio.run(_take(models, format5))
    out.update({f"warm_{k}": v for k, v in warm.items()})
    stored = len(header) + sum(len(p) for p in parts)
    t0, c0 = time.perf_counter(), time.process_time()
    doc = decode_snapshot(header, parts) if format5 else decode_snapshot(header)
    restored = models_from_dict(doc, params)
    restore = {"restore_s": time.perf_counter() - t0, "restore_cpu_s": time.process_time() - c0}
    same = int(restored.cooc.table.lengths().sum()) == pairs
    return {
        "pipeline": pipeline.__file__, "format": 5 if format5 else 4, "items": items,
        "events": events, "learn_s": learn_s, "pairs": pairs, "rss_mib": before,
        "snapshot_peak_extra_mib": max(0.0, peak.peak - before), "stored_mib": stored / 2**20,
        "parts": len(parts), "restored_pairs_equal": same, **out, **restore,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variants", default="format5", help="of format5, format4")
    parser.add_argument("--results", default="snapshot", help="name of the results file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_one(args.child, args.items, args.events, args.users, args.seed)
        Path(args.child_out).write_text(json.dumps(result))
        return 0
    sys.path.insert(0, str(BENCH))
    from common import MachineLoad, fmt, log, source_tree, table, write_results

    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="recloop-snapshot-") as workdir:
        for name in args.variants.split(","):
            trees = {"format5": ROOT, "format4": None}
            tree = trees[name] or source_tree(FORMAT4_COMMIT, Path(workdir))
            log(f"{name}: {args.items:,} items, {args.events:,} events")
            load = MachineLoad()
            load.start()
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                cmd = [sys.executable, __file__, "--child", str(tree), "--child-out", tmp.name]
                cmd += ["--items", str(args.items), "--events", str(args.events)]
                cmd += ["--users", str(args.users), "--seed", str(args.seed)]
                t = time.monotonic()
                subprocess.run(cmd, check=True)
                runs[name] = json.loads(Path(tmp.name).read_text())
            load.stop()
            runs[name]["machine_load"] = load.window(t)
    rows = [
        [name, r["format"], fmt(r["pairs"]), fmt(r["rss_mib"], 0), fmt(r["copy_s"] * 1e3, 0),
         fmt(r["warm_copy_s"] * 1e3, 0), fmt(r["prefault_s"], 2), fmt(r["build_s"], 2),
         fmt(r["build_cpu_s"], 2), fmt(r["loop_late_max_s"] * 1e3, 0),
         fmt(r["warm_loop_late_max_s"] * 1e3, 0),
         fmt(r["loop_late_during_build_p99_s"] * 1e3, 1), fmt(r["stored_mib"], 0), r["parts"],
         fmt(r["snapshot_peak_extra_mib"], 0), fmt(r["restore_s"], 1),
         r["restored_pairs_equal"]]
        for name, r in runs.items()
    ]  # fmt: skip
    headers = ["variant", "format", "pairs", "model RSS MiB", "on loop ms", "warm on loop ms",
               "prefault s", "off loop s",
               "off loop CPU s", "loop late max ms", "warm late max ms",
               "late p99 while off loop ms",
               "stored MiB", "parts", "peak extra MiB", "restore s", "restored all"]  # fmt: skip
    title = f"snapshot: {args.items:,} items after {args.events:,} events (defaults, wall time)"
    print(table(headers, rows, title=title))
    out = write_results(args.results, {"runs": runs, "args": vars(args)}, benchmark="snapshot")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
