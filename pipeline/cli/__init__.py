"""The ``recloop`` command line: one click group, one module per command family.

Commands are imported lazily inside ``main`` so that ``recloop --help`` stays fast and a
command's heavy dependencies (Faust, river) load only when that command runs.
"""

from __future__ import annotations

import importlib

import click

# command name -> "module:attribute" of a click command or group
_COMMANDS: dict[str, str] = {
    "stack": "pipeline.cli.stack_cmd:stack",
    "simulate": "pipeline.cli.simulate_cmd:simulate",
    "dataset": "pipeline.cli.dataset_cmd:dataset",
    "recs": "pipeline.cli.recs_cmd:recs",
    "replay": "pipeline.cli.replay_cmd:replay_cmd",
    "demo": "pipeline.cli.demo_cmd:demo",
    "forget": "pipeline.cli.forget_cmd:forget",
    "segments": "pipeline.cli.segments_cmd:segments",
    "experiments": "pipeline.cli.experiments_cmd:experiments",
    "explain": "pipeline.cli.explain_cmd:explain",
    "serve": "pipeline.cli.serve_cmd:serve",
    "tail": "pipeline.cli.tail_cmd:tail",
    "dlq": "pipeline.cli.dlq_cmd:dlq",
    "topics": "pipeline.cli.topics_cmd:topics",
}


class _LazyGroup(click.Group):
    """A group that imports a sub-command's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:  # added with ``add_command`` (``agents.cli`` adds ``worker``)
            return self.commands.get(cmd_name)
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup)
@click.version_option(package_name="recloop")
def main() -> None:
    """recloop: real-time personalization on Kafka, Faust, Redis and river."""
