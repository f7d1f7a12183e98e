"""``python -m pipeline.cli``: the recloop CLI (how tests start workers)."""

from pipeline.cli import main

main()
