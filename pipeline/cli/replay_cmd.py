"""``recloop replay``: prequential quality replay of an event log."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.cli.common import quiet_option, show_progress
from pipeline.tooling.replay import (
    ReplayConfig,
    format_report,
    load_events,
    load_items,
    median_positive_ts,
    replay,
    report_json,
)


@click.command("replay")
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--items",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Item v1 lines (categories, durations, titles).",
)
@click.option("--k", default=10, show_default=True, help="List length evaluated (HitRate@K).")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the report as JSON.",
)
@quiet_option
def replay_cmd(
    events: Path, items: Path | None, k: int, json_path: Path | None, quiet: bool
) -> None:
    """Replay EVENTS (event v1 lines) test-then-learn through the production engine."""
    log = load_events(events)
    catalogue = load_items(items) if items else []
    config = ReplayConfig(k=k)
    median_ts = median_positive_ts(log, catalogue, config.completion_threshold)
    if show_progress(quiet):
        with click.progressbar(
            log, label="replaying", file=sys.stderr, show_pos=True, show_eta=True
        ) as bar:
            report = replay(bar, catalogue, config, median_ts=median_ts)
    else:
        report = replay(log, catalogue, config, median_ts=median_ts)
    click.echo(format_report(report))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_bytes(report_json(report))
        click.echo(f"wrote {json_path}")
