"""``python -m agents``: the ``recloop`` executable (how tests and the demo start processes)."""

from agents.cli import main

main()
