"""``python -m pipeline``: the recloop CLI."""

from pipeline.cli import main

main()
