"""``recloop replay``: prequential quality replay of an event log."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.tooling.replay import ReplayConfig, format_report, replay_files, report_json


@click.command()
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
def replay(events: Path, items: Path | None, k: int, json_path: Path | None) -> None:
    """Replay EVENTS (event v1 lines) test-then-learn through the production engine."""
    report = replay_files(events, items, ReplayConfig(k=k))
    click.echo(format_report(report))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_bytes(report_json(report))
        click.echo(f"wrote {json_path}")
