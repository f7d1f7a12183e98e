"""MovieLens conversion on tiny hand-written files in both published layouts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from pipeline.cli.dataset_cmd import dataset
from pipeline.tooling.dataset import (
    NOMINAL_DURATION_SECONDS,
    DatasetError,
    convert_movielens,
    rating_events,
)
from schemas.events import Event, Item

D = NOMINAL_DURATION_SECONDS
GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES)


def _write_100k(root: Path) -> Path:
    src = root / "ml-100k"
    src.mkdir()
    (src / "u.genre").write_text(
        "".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n", encoding="latin-1"
    )
    (src / "u.item").write_bytes(
        (
            f"1|Toy Story (1995)|01-Jan-1995||http://x|{_flags('Animation', 'Comedy')}\n"
            f"2|Café Society (1995)|01-Jan-1995||http://x|{_flags('Drama')}\n"
            f"3|unknown||||{_flags('unknown')}\n"
            f"4|Nosferatu (1922)|16-Mar-1922||http://x|{_flags('Horror')}\n"
        ).encode("latin-1")
    )
    # user, item, rating, unix seconds; two ratings share ts=200 (file order must survive)
    rows = ["7\t2\t3\t200", "5\t1\t5\t100", "6\t1\t4\t200", "5\t3\t1\t150"]
    (src / "u.data").write_text("\n".join(rows) + "\n")
    return src


def _write_csv(root: Path) -> Path:
    src = root / "ml-latest-small"
    src.mkdir()
    (src / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '11,"American President, The (1995)",Comedy|Drama|Romance\n'
        "99,Untitled,(no genres listed)\n",
        encoding="utf-8",
    )
    (src / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "1,1,4.5,964982703\n"
        "1,11,3.5,964981247\n"
        "2,99,2.5,964982703\n"
        "2,1,5.0,964982224\n"
        "3,11,0.5,964982703\n",
        encoding="utf-8",
    )
    return src


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_ml100k_layout(tmp_path: Path) -> None:
    stats = convert_movielens(_write_100k(tmp_path), tmp_path / "out")
    events = _lines(tmp_path / "out" / "events.jsonl")
    assert [(e["type"], e["user_id"], e["item_id"], e["ts"]) for e in events] == [
        ("watch", "5", "1", 100_000),
        ("skip", "5", "3", 150_000),
        ("click", "7", "2", 200_000),
        ("watch", "7", "2", 200_000),
        ("watch", "6", "1", 200_000),
    ]
    assert [e.get("watch_seconds") for e in events] == [D, D * 0.05, None, D * 0.4, D * 0.9]
    assert [e["event_id"] for e in events[2:4]] == ["ml-7-2-200000-0", "ml-7-2-200000-1"]
    assert all(e["duration_seconds"] == D for e in events)
    items = _lines(tmp_path / "out" / "items.jsonl")
    assert all(item.pop("schema_version") == 1 for item in items)
    assert items == [
        {"item_id": "1", "categories": ["Animation", "Comedy"], "duration_seconds": D,
         "title": "Toy Story (1995)", "published_ts": 788_918_400_000},
        {"item_id": "2", "categories": ["Drama"], "duration_seconds": D,
         "title": "Café Society (1995)", "published_ts": 788_918_400_000},
        {"item_id": "3", "categories": [], "duration_seconds": D, "title": "unknown"},
        # before 1970: item v1 has no negative timestamps, so published_ts is left out
        {"item_id": "4", "categories": ["Horror"], "duration_seconds": D,
         "title": "Nosferatu (1922)"},
    ]  # fmt: skip
    assert all(e["schema_version"] == 1 for e in events)
    assert (stats.layout, stats.ratings, stats.items, stats.users) == ("ml-100k", 4, 4, 3)
    assert stats.events_by_type == {"click": 1, "watch": 3, "skip": 1}
    assert stats.events == 5
    assert (stats.first_ts, stats.last_ts) == (100_000, 200_000)


def test_csv_layout(tmp_path: Path) -> None:
    stats = convert_movielens(_write_csv(tmp_path), tmp_path / "out")
    events = _lines(tmp_path / "out" / "events.jsonl")
    assert [(e["type"], e["user_id"], e["item_id"], e.get("watch_seconds")) for e in events] == [
        ("click", "1", "11", None),
        ("watch", "1", "11", D * 0.4),
        ("watch", "2", "1", D),
        ("watch", "1", "1", D * 0.9),  # 4.5 stars; ties at 964982703 keep file order
        ("skip", "2", "99", D * 0.05),
        ("skip", "3", "11", D * 0.05),
    ]
    assert events[0]["ts"] == 964_981_247_000
    items = {i["item_id"]: i for i in _lines(tmp_path / "out" / "items.jsonl")}
    assert all(item.pop("schema_version") == 1 for item in items.values())
    assert items["11"]["title"] == "American President, The (1995)"
    assert items["11"]["categories"] == ["Comedy", "Drama", "Romance"]
    assert items["11"]["published_ts"] == 788_918_400_000
    assert items["99"] == {"item_id": "99", "categories": [], "duration_seconds": D,
                           "title": "Untitled"}  # fmt: skip
    assert stats.layout == "csv"
    assert stats.events_by_type == {"click": 1, "watch": 3, "skip": 2}


@pytest.mark.parametrize("write", [_write_100k, _write_csv])
def test_output_validates_against_the_contract_models(
    tmp_path: Path, write: Callable[[Path], Path]
) -> None:
    convert_movielens(write(tmp_path), tmp_path / "out")
    for line in (tmp_path / "out" / "events.jsonl").read_bytes().splitlines():
        Event.model_validate_json(line)
    for line in (tmp_path / "out" / "items.jsonl").read_bytes().splitlines():
        Item.model_validate_json(line)


def test_conversion_is_deterministic(tmp_path: Path) -> None:
    src = _write_csv(tmp_path)
    convert_movielens(src, tmp_path / "a")
    convert_movielens(src, tmp_path / "b")
    for name in ("events.jsonl", "items.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not list((tmp_path / "a").glob("*.partial"))


@pytest.mark.parametrize(
    ("stars", "kinds", "completion"),
    [(5.0, ["watch"], 1.0), (4.0, ["watch"], 0.9), (4.5, ["watch"], 0.9),
     (3.0, ["click", "watch"], 0.4), (3.5, ["click", "watch"], 0.4),
     (2.5, ["skip"], 0.05), (0.5, ["skip"], 0.05), (1.0, ["skip"], 0.05)],
)  # fmt: skip
def test_rating_mapping(stars: float, kinds: list[str], completion: float) -> None:
    events = rating_events("u", "i", stars, 5)
    assert [e["type"] for e in events] == kinds
    assert events[-1]["watch_seconds"] == pytest.approx(D * completion)
    assert [e["event_id"] for e in events] == [f"ml-u-i-5-{n}" for n in range(len(kinds))]


def test_not_a_movielens_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"u\.data .*ratings\.csv"):
        convert_movielens(tmp_path, tmp_path / "out")


def test_malformed_rating_names_file_and_line(tmp_path: Path) -> None:
    src = _write_csv(tmp_path)
    with (src / "ratings.csv").open("a") as fh:
        fh.write("4,1,four,964982703\n")
    with pytest.raises(DatasetError, match=r"ratings\.csv:7"):
        convert_movielens(src, tmp_path / "out")
    assert not (tmp_path / "out" / "events.jsonl").exists()


def test_cli_prints_counts(tmp_path: Path) -> None:
    src = _write_100k(tmp_path)
    result = CliRunner().invoke(dataset, ["movielens", str(src), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "ratings=4" in result.output and "click=1 skip=1 watch=3" in result.output
    bad = CliRunner().invoke(dataset, ["movielens", str(tmp_path), "-o", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "not a MovieLens directory" in bad.output
