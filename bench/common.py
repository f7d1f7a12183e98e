"""Former home of the shared benchmark code, now ``bench/harness/``: the old names, re-exported.

Kept so scripts written against ``common`` (``from common import ...`` when run as
``python bench/x.py``, ``from bench.common import ...`` with the repository on ``sys.path``)
keep working; new code imports the harness module it needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `harness` beside this file

from harness.kafka import (  # noqa: E402
    admin_client,
    end_offsets,
    fast_produce,
    group_lag,
    topic_size,
)
from harness.machine import (  # noqa: E402
    CONTENDED_PERCENT,
    CpuMeter,
    MachineLoad,
    contention_note,
    cpu_seconds,
    proc_status_kib,
    rss_mib,
    timed,
    wait_for_quiet,
)
from harness.output import fmt, log, table, verdict  # noqa: E402
from harness.prom import fetch_text, prom_sum  # noqa: E402
from harness.results import (  # noqa: E402
    BENCH_DIR,
    REPO_ROOT,
    RESULTS_DIR,
    machine_facts,
    source_tree,
    write_results,
)
from harness.services import (  # noqa: E402
    Services,
    add_common_args,
    bench_settings,
    services,
    with_new_port,
)
from harness.stats import percentile, summary  # noqa: E402

__all__ = [
    "BENCH_DIR",
    "CONTENDED_PERCENT",
    "REPO_ROOT",
    "RESULTS_DIR",
    "CpuMeter",
    "MachineLoad",
    "Services",
    "add_common_args",
    "admin_client",
    "bench_settings",
    "contention_note",
    "cpu_seconds",
    "end_offsets",
    "fast_produce",
    "fetch_text",
    "fmt",
    "group_lag",
    "log",
    "machine_facts",
    "percentile",
    "proc_status_kib",
    "prom_sum",
    "rss_mib",
    "services",
    "source_tree",
    "summary",
    "table",
    "timed",
    "topic_size",
    "verdict",
    "wait_for_quiet",
    "with_new_port",
    "write_results",
]
