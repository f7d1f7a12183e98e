# recloop developer entry points. `make test` works on a fresh machine: it creates .venv,
# installs the package, fetches the Kafka jars and (as root) installs redis-server.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
STAMP := $(VENV)/.recloop-installed
PYTHON := $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
BENCHES := quality freshness throughput memory declared experiment new-items serve producers redis-writes scale snapshot
# e.g. make bench-throughput BENCH_ARGS="--runs 1" (a quick check instead of three runs)
BENCH_ARGS ?=

# apt-get (via `recloop stack setup`) must never prompt: CI has no stdin
export DEBIAN_FRONTEND ?= noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup test lint lock stack-up stack-down demo $(addprefix bench-,$(BENCHES)) \
	bench-freshness-1000 bench-freshness-2000

help:
	@echo "targets: setup test lint lock stack-up stack-down demo $(addprefix bench-,$(BENCHES))" \
		"bench-freshness-1000 bench-freshness-2000"

# Reinstall only when pyproject.toml changed since the last successful install.
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "python3.11 or python3 (>= 3.11) is required" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else f"recloop needs Python >= 3.11; $(PYTHON) is {v.major}.{v.minor}")'
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)
	$(VENV)/bin/recloop stack setup
	@# the console's browser tests drive Debian's chromium (Playwright, no browser download)
	@command -v chromium >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else echo "browser tests need Debian's chromium: sudo apt-get install chromium" >&2; fi; }
	@# examples/ are tested in Go and Node too (modules and packages come from their registries
	@# during the test run); Go >= 1.21 fetches the toolchain examples/go/go.mod asks for
	@# through the module proxy (Debian bookworm's golang-go, 1.19, is too old for that)
	@command -v go >/dev/null 2>&1 && command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq golang-go nodejs npm >/dev/null; \
		else echo "the examples' tests need Go >= 1.21 and Node >= 18 with npm" >&2; fi; }
	@# the deploy tests check the Prometheus config, alert rules and dashboard queries with promtool
	@command -v promtool >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	else echo "deploy tests need Debian's promtool: sudo apt-get install prometheus" >&2; fi; }

# requirements.lock: exact versions and hashes of the runtime dependencies (and the build
# backend) for the image, any platform, Python 3.11; tests/deploy checks it against pyproject
lock: $(STAMP)
	printf 'setuptools>=69\nwheel\n' | $(VENV)/bin/uv pip compile pyproject.toml - --universal \
		--python-version 3.11 --generate-hashes --custom-compile-command "make lock" \
		-o requirements.lock

# the suite, the runnable examples in docstrings (--doctest-modules) and the import contracts
test: setup
	$(VENV)/bin/pytest -q tests pipeline schemas

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

stack-up: setup
	$(VENV)/bin/recloop stack up

stack-down: $(STAMP)
	$(VENV)/bin/recloop stack down

demo: setup
	$(VENV)/bin/recloop demo

$(addprefix bench-,$(filter-out freshness throughput quality,$(BENCHES))): bench-%: setup
	$(VENV)/bin/python bench/$(subst -,_,$*).py $(BENCH_ARGS)

# the ranking cost, then the replay with every variant and both time scales: README's table
bench-quality: setup
	$(VENV)/bin/python bench/rank_cost.py
	$(VENV)/bin/python bench/quality.py --sweep $(BENCH_ARGS)

# three runs (medians with min-max), the ceiling measured in every run; then the plot
bench-throughput: setup
	$(VENV)/bin/python bench/throughput.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/plot.py bench/results/throughput.json

# freshness has two standard points: 1,000 events/s (p99 < 1 s) and 2,000 (p99 < 2 s)
bench-freshness: bench-freshness-1000 bench-freshness-2000

bench-freshness-1000: setup
	$(VENV)/bin/python bench/freshness.py --rate 1000 $(BENCH_ARGS)
	$(VENV)/bin/python bench/plot.py bench/results/freshness.json

bench-freshness-2000: setup
	$(VENV)/bin/python bench/freshness.py --rate 2000 $(BENCH_ARGS)
	$(VENV)/bin/python bench/plot.py bench/results/freshness_2000.json
