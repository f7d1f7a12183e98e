"""What the benchmarks share: one small module per concern, each script imports what it uses.

* ``services``: Kafka and Redis for a run (started on free ports, or from the environment),
  per-run settings (own topics, group, namespace, web port), the options every bench takes;
* ``machine``: CPU and memory of processes (``/proc``), the load of other processes during
  a run, waiting for a quiet machine;
* ``kafka``: fast pre-loading, paced producing, topic sizes, consumer-group lag (through
  ``pipeline.kafka.lag``, the one lag module) sampled over a run;
* ``prom``: parsing a worker's ``/metrics`` and scraping it over a run into per-window
  figures (event-loop lag, batch stage times, backlog, lists per event);
* ``processes``: worker and ceiling-app processes, draining a backlog at full speed;
* ``listeners``: reading lists as clients do (the recommendations topic, the ``recs`` key);
* ``traffic``: the events the benches send (simulator traffic, per-user traffic);
* ``redis_memory``: what a Redis namespace holds, per key kind;
* ``pyspy``: sampling a worker with py-spy and summarising where its time goes;
* ``runs``: repeating a measurement and reporting each figure's median and range;
* ``stats``, ``output``, ``results``: percentiles, tables, result JSON with machine facts.

Scripts run as ``python bench/<name>.py``, which puts ``bench/`` first on ``sys.path``, so
they import ``harness.<module>``; the modules import each other relatively.
"""
