"""Developer and operator tooling: local stack, simulator, dataset converter, replay, processes.

Imported by the CLI, tests and benchmarks only; nothing on the runtime path (worker, API,
stores, models) imports it (an import contract checks it).
"""
