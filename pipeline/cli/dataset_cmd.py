"""``recloop dataset``: turn public datasets into event v1 / item v1 JSON lines."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path

import click

from pipeline.cli.common import quiet_option, show_progress
from pipeline.tooling.dataset import DatasetError, convert_movielens


@click.group()
def dataset() -> None:
    """Convert public datasets into recloop events and items (JSON lines)."""


@dataset.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for events.jsonl and items.jsonl (created if missing).",
)
@quiet_option
def movielens(path: Path, out_dir: Path, quiet: bool) -> None:
    """Convert an unzipped MovieLens folder (ML-100K or the ratings.csv layout).

    Ratings become watch / click+watch / skip events as documented in
    ``pipeline.tooling.dataset``; the output is sorted by timestamp, ready for ``recloop replay``.
    """
    started = time.perf_counter()
    with ExitStack() as stack:
        bar = None
        if show_progress(quiet):
            bar = stack.enter_context(
                click.progressbar(length=1, label="converting ratings", file=sys.stderr)
            )

        def advance(done: int, total: int) -> None:
            assert bar is not None
            bar.length = total
            bar.update(done - bar.pos)

        try:
            stats = convert_movielens(path, out_dir, progress=advance if bar else None)
        except DatasetError as exc:
            raise click.ClickException(str(exc)) from exc
    elapsed = time.perf_counter() - started
    by_type = " ".join(f"{kind}={n}" for kind, n in sorted(stats.events_by_type.items()))
    click.echo(
        f"dataset: layout={stats.layout} ratings={stats.ratings} users={stats.users} "
        f"items={stats.items} events={stats.events} ({by_type}) elapsed={elapsed:.1f}s"
    )
    click.echo(f"dataset: wrote {out_dir / 'events.jsonl'} and {out_dir / 'items.jsonl'}")
