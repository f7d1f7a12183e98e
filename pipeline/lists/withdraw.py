"""Taking withdrawn items out of a list already published, without ranking it again.

When an item is withdrawn, every stored list that holds it must change within seconds, for
thousands of users at once. Ranking a list again costs ~0.3 ms of CPU; dropping the item
from the stored document costs a JSON round trip, so the worker first republishes each
list without its unavailable items (``without_items``) and then refreshes it in the
background like any deferred refresh, which fills the list up again.

The patched list is a new version of the same list: same trigger, same experiment arm,
``generated_ts`` moved to now (readers keep the newest per user).

>>> import orjson
>>> doc = orjson.dumps({"user_id": "u", "items": [{"item_id": "a"}, {"item_id": "b"}],
...                     "generated_ts": 1})
>>> orjson.loads(without_items(doc, lambda i: i != "a", now_ms=5))
{'user_id': 'u', 'items': [{'item_id': 'b'}], 'generated_ts': 5}
>>> without_items(doc, lambda i: True, now_ms=5) is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson


def without_items(doc: bytes, keep: Callable[[str], bool], *, now_ms: int) -> bytes | None:
    """The list document without the items ``keep`` refuses; ``None`` when nothing changes.

    A document that is not a list (corrupt, from a newer writer) is left alone (``None``):
    the background refresh that follows replaces it anyway.
    """
    try:
        parsed: Any = orjson.loads(doc)
        items = parsed["items"]
        kept = [entry for entry in items if keep(str(entry["item_id"]))]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if len(kept) == len(items):
        return None
    parsed["items"] = kept
    parsed["generated_ts"] = max(now_ms, int(parsed.get("generated_ts") or 0))
    return orjson.dumps(parsed)


def item_ids(doc: bytes) -> list[str]:
    """The item ids of a list document (empty for anything else).

    >>> item_ids(b'{"items": [{"item_id": "a"}]}'), item_ids(b"nope")
    (['a'], [])
    """
    try:
        parsed: Any = orjson.loads(doc)
        return [str(entry["item_id"]) for entry in parsed["items"]]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return []
