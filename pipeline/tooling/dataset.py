"""Convert MovieLens ratings into recloop event v1 and item v1 JSON lines.

Replaying a public dataset through the pipeline is how quality is measured and compared
with published numbers, so the mapping from star ratings to implicit events is a contract:
changing it changes every benchmark result. It is:

============================  =========================================================
rating (stars)                events, all with ``ts`` = rating time (seconds -> ms)
============================  =========================================================
``>= 4``                      one ``watch``; ``watch_seconds`` = D * 1.0 for 5 (and
                              above), D * 0.9 otherwise (4, 4.5)
``>= 3`` and ``< 4``          a ``click`` then a ``watch`` with ``watch_seconds`` = D * 0.4
``< 3``                       one ``skip`` with ``watch_seconds`` = D * 0.05
============================  =========================================================

- D = ``NOMINAL_DURATION_SECONDS`` (100 minutes) for every film: MovieLens has no runtimes,
  and completion (watch / duration) is what the pipeline learns from. Every event carries
  ``duration_seconds`` = D, every item ``duration_seconds`` = D. With the default
  ``completion_threshold`` (0.6) ratings >= 4 are completed watches and 3 is not.
- The click and watch of a 3-star rating share the original timestamp; their order in the
  output (click first) is the tie-break. Output is sorted by ``ts`` with a *stable* sort,
  so events at equal timestamps keep the order of the ratings file, and a consumer that
  keeps per-user order (Kafka, keyed by ``user_id``) sees the click before the watch.
- ``event_id`` = ``ml-{user}-{item}-{ts}-{n}``: original ids, ``ts`` in ms as in the event,
  ``n`` = 0 for the first event of a rating and 1 for the watch after a click. Converting
  twice gives the same ids, so a replay into a running pipeline is de-duplicated.
- ``user_id`` and ``item_id`` are the original numeric ids as strings.
- Categories are the MovieLens genre names as published (ML-100K ``Children's``, newer
  ``Children``); ML-100K's ``unknown`` genre is dropped and ``(no genres listed)`` gives
  ``[]``. Items carry ``title``; ``published_ts`` is the ML-100K release date, or 1 January
  of the year in the title's trailing ``(YYYY)`` in the newer layout; it is omitted when
  unknown or before 1970 (item v1 timestamps are non-negative epoch ms).
- Every line carries ``schema_version`` 1, so a stored file says which contract it follows.

Two layouts are read: ML-100K (``u.data``, ``u.item``, ``u.genre``) and the newer CSV
layout of ML-latest, ML-20M, ML-25M, ML-32M (``ratings.csv``, ``movies.csv``). Ratings are
held as compact arrays and sorted with numpy, so ML-25M fits in about 1 GB of memory.
"""

from __future__ import annotations

import csv
import os
import re
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson

from schemas.events import SCHEMA_VERSION

NOMINAL_DURATION_SECONDS: Final = 6_000.0
_YEAR_IN_TITLE: Final = re.compile(r"\((\d{4})\)\s*$")

PROGRESS_EVERY: Final = 10_000
"""Ratings between two progress reports: often enough for a bar, rare enough to cost nothing."""


class DatasetError(ValueError):
    """A dataset directory or file that cannot be converted; the message says why."""


@dataclass(frozen=True, slots=True)
class ConversionStats:
    """What a conversion wrote: counts per event type, items, users and the time span."""

    layout: str
    ratings: int
    items: int
    users: int
    events_by_type: dict[str, int] = field(default_factory=dict)
    first_ts: int | None = None
    last_ts: int | None = None

    @property
    def events(self) -> int:
        """Total events written."""
        return sum(self.events_by_type.values())


@dataclass(slots=True)
class _Ratings:
    users: array[int] = field(default_factory=lambda: array("q"))
    items: array[int] = field(default_factory=lambda: array("q"))
    stars: array[float] = field(default_factory=lambda: array("f"))
    seconds: array[int] = field(default_factory=lambda: array("q"))

    def add(self, user: int, item: int, stars: float, seconds: int) -> None:
        self.users.append(user)
        self.items.append(item)
        self.stars.append(stars)
        self.seconds.append(seconds)


def detect_layout(path: Path) -> str:
    """``"ml-100k"`` or ``"csv"`` for a MovieLens directory; ``DatasetError`` otherwise."""
    if (path / "u.data").is_file():
        return "ml-100k"
    if (path / "ratings.csv").is_file():
        return "csv"
    msg = (
        f"{path} is not a MovieLens directory: expected u.data + u.item + u.genre (ML-100K) "
        "or ratings.csv + movies.csv (ML-latest/20M/25M/32M); pass the unzipped folder"
    )
    raise DatasetError(msg)


def convert_movielens(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ConversionStats:
    """Write ``out_dir/events.jsonl`` and ``out_dir/items.jsonl`` from a MovieLens folder.

    Files are written under a temporary name and renamed, so a failed conversion never
    leaves a half-written dataset that a replay would mistake for a complete one.
    ``progress(done, total)`` hears how many ratings are converted, every
    ``PROGRESS_EVERY`` and at the end (the 25M layout takes minutes).
    """
    src, out = Path(path), Path(out_dir)
    layout = detect_layout(src)
    if layout == "ml-100k":
        items = list(_read_100k_items(src))
        ratings = _read_100k_ratings(src / "u.data")
    else:
        items = list(_read_csv_items(src / "movies.csv"))
        ratings = _read_csv_ratings(src / "ratings.csv")
    out.mkdir(parents=True, exist_ok=True)
    _write_atomically(out / "items.jsonl", (orjson.dumps(item) for item in items))
    counts = {"click": 0, "watch": 0, "skip": 0}
    lines = (orjson.dumps(e) for e in _events(ratings, counts, progress))
    _write_atomically(out / "events.jsonl", lines)
    seconds = np.frombuffer(ratings.seconds, dtype=np.int64)
    return ConversionStats(
        layout=layout,
        ratings=len(ratings.users),
        items=len(items),
        users=len(np.unique(np.frombuffer(ratings.users, dtype=np.int64))),
        events_by_type=counts,
        first_ts=int(seconds.min()) * 1_000 if len(seconds) else None,
        last_ts=int(seconds.max()) * 1_000 if len(seconds) else None,
    )


def rating_events(user: str, item: str, stars: float, ts: int) -> list[dict[str, Any]]:
    """The events of one rating at ``ts`` (ms), per the mapping in the module docstring.

    >>> [(e["type"], e.get("watch_seconds")) for e in rating_events("1", "2", 3.5, 1_000)]
    [('click', None), ('watch', 2400.0)]
    """
    d = NOMINAL_DURATION_SECONDS
    if stars >= 4:
        plan: list[tuple[str, float | None]] = [("watch", d * (1.0 if stars >= 5 else 0.9))]
    elif stars >= 3:
        plan = [("click", None), ("watch", d * 0.4)]
    else:
        plan = [("skip", d * 0.05)]
    events = []
    for n, (kind, watch_seconds) in enumerate(plan):
        event: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "event_id": f"ml-{user}-{item}-{ts}-{n}",
            "type": kind,
            "user_id": user,
            "item_id": item,
            "ts": ts,
            "duration_seconds": d,
        }
        if watch_seconds is not None:
            event["watch_seconds"] = watch_seconds
        events.append(event)
    return events


def _events(
    ratings: _Ratings, counts: dict[str, int], progress: Callable[[int, int], None] | None
) -> Iterator[dict[str, Any]]:
    seconds = np.frombuffer(ratings.seconds, dtype=np.int64)
    total = len(seconds)
    for done, i in enumerate(np.argsort(seconds, kind="stable").tolist()):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, total)
        for event in rating_events(
            str(ratings.users[i]),
            str(ratings.items[i]),
            ratings.stars[i],
            ratings.seconds[i] * 1_000,
        ):
            counts[event["type"]] += 1
            yield event
    if progress is not None:
        progress(total, total)


def _write_atomically(target: Path, lines: Iterator[bytes]) -> None:
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as fh:
        for line in lines:
            fh.write(line)
            fh.write(b"\n")
    partial.replace(target)


def _bad_line(file: Path, line_no: int, line: str, why: str) -> DatasetError:
    msg = f"{file}:{line_no}: {why}: {line.strip()[:120]!r}; is this an unmodified MovieLens file?"
    return DatasetError(msg)


def _read_100k_ratings(file: Path) -> _Ratings:
    ratings = _Ratings()
    with file.open(encoding="latin-1") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            try:
                user, item, stars, seconds = parts
                ratings.add(int(user), int(item), float(stars), int(seconds))
            except ValueError as exc:
                raise _bad_line(
                    file, line_no, line, "expected user<TAB>item<TAB>rating<TAB>ts"
                ) from exc
    return ratings


def _read_100k_items(src: Path) -> Iterator[dict[str, Any]]:
    genres: list[str] = []
    with (src / "u.genre").open(encoding="latin-1") as fh:
        for line in fh:
            if line.strip():
                name, _, index = line.strip().rpartition("|")
                if int(index) != len(genres):
                    raise _bad_line(src / "u.genre", len(genres) + 1, line, "genre out of order")
                genres.append(name)
    file = src / "u.item"
    with file.open(encoding="latin-1") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("|")
            flags = parts[5:]
            if len(parts) < 6 or len(flags) != len(genres):
                raise _bad_line(file, line_no, line, f"expected 5 fields and {len(genres)} flags")
            categories = [
                g for g, f in zip(genres, flags, strict=True) if f == "1" and g != "unknown"
            ]
            yield _item(parts[0], parts[1], categories, _release_ts(parts[2]))


def _read_csv_ratings(file: Path) -> _Ratings:
    ratings = _Ratings()
    with file.open(encoding="utf-8", newline="") as fh:
        header = fh.readline().strip()
        if header.split(",")[:4] != ["userId", "movieId", "rating", "timestamp"]:
            raise _bad_line(file, 1, header, "expected header userId,movieId,rating,timestamp")
        for line_no, line in enumerate(fh, 2):
            if not line.strip():
                continue
            # ratings.csv is plain numbers, so a split is safe and ~3x faster than csv.
            try:
                user, item, stars, seconds = line.split(",")[:4]
                ratings.add(int(user), int(item), float(stars), int(seconds))
            except ValueError as exc:
                raise _bad_line(
                    file, line_no, line, "expected userId,movieId,rating,timestamp"
                ) from exc
    return ratings


def _read_csv_items(file: Path) -> Iterator[dict[str, Any]]:
    with file.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        if header[:3] != ["movieId", "title", "genres"]:
            raise _bad_line(file, 1, ",".join(header), "expected header movieId,title,genres")
        for row in reader:
            if not row:
                continue
            if len(row) < 3:
                raise _bad_line(file, reader.line_num, ",".join(row), "expected 3 fields")
            movie_id, title, genres = row[0], row[1].strip(), row[2]
            categories = (
                [] if genres == "(no genres listed)" else [g for g in genres.split("|") if g]
            )
            match = _YEAR_IN_TITLE.search(title)
            published = _year_ts(int(match.group(1))) if match else None
            yield _item(movie_id, title, categories, published)


def _item(
    item_id: str, title: str, categories: list[str], published_ts: int | None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "item_id": item_id,
        "categories": categories,
        "duration_seconds": NOMINAL_DURATION_SECONDS,
        "title": title,
    }
    if published_ts is not None and published_ts >= 0:
        item["published_ts"] = published_ts
    return item


def _release_ts(text: str) -> int | None:
    try:
        released = datetime.strptime(text.strip(), "%d-%b-%Y").replace(tzinfo=UTC)
    except ValueError:
        return None  # ML-100K leaves a few release dates empty
    return int(released.timestamp()) * 1_000


def _year_ts(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * 1_000
