"""What a stored list document holds, read without a model (forget, the API filter).

Withdrawn items are taken out of stored lists in Redis itself (``withdraw_list.lua``);
readers that need the item ids of a stored list use ``item_ids``.
"""

from __future__ import annotations

from typing import Any

import orjson


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
