"""The model's size on /metrics: read at scrape time from the live model."""

from __future__ import annotations

from prometheus_client import generate_latest

from pipeline.model.models import ModelParams, SharedModels
from pipeline.model.record import LearnRecord
from pipeline.worker.metrics import WorkerMetrics


def _sample(text: str, name: str) -> float:
    line = next(row for row in text.splitlines() if row.startswith(name + " "))
    return float(line.split()[-1])


def test_model_bytes_and_budget_passes_follow_the_model() -> None:
    params = ModelParams(neighbors=8, neighbor_memory_mb=1)
    models = SharedModels(params)
    metrics = WorkerMetrics()
    metrics.watch_model(models)
    before = generate_latest(metrics.registry).decode()
    empty = _sample(before, 'recloop_model_bytes{part="neighbors"}')
    assert _sample(before, "recloop_model_neighbor_budget_passes") == 0
    budget = 2**20 // 8
    for k in range(budget // 2):  # pairs of fresh items: far more entries than the budget
        models.apply(LearnRecord(f"b{k}", k, "watch", 1.0, 1.0, (), ((f"a{k}", 1.0),)))
    after = generate_latest(metrics.registry).decode()
    assert _sample(after, 'recloop_model_bytes{part="neighbors"}') > empty
    assert _sample(after, 'recloop_model_bytes{part="items"}') > 0
    assert _sample(after, "recloop_model_neighbor_budget_passes") >= 1
    assert models.cooc.table.high_water <= budget
