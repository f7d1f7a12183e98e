"""The dead-letter topic as documents: what ``recloop dlq`` and ``GET /v1/dead-letters`` read.

A snapshot read (:func:`pipeline.kafka.reader.read_range`): letters written while it runs
are left for the next one, so re-driving what was read can never feed itself.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.config import Settings
from pipeline.kafka.reader import read_range


def dead_letters(
    settings: Settings, *, last: int | None = None, timeout: float = 30.0, client_id: str = "dlq"
) -> list[dict[str, Any]]:
    """Dead-letter v1 documents on the topic now, oldest first (``last``: per partition).

    Records that are not JSON objects (nothing recloop wrote) are left out.
    """
    docs = []
    records = read_range(
        settings, settings.topic_dlq, last=last, timeout=timeout, client_id=client_id
    )
    for record in records:
        try:
            doc = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    docs.sort(key=lambda d: int(d.get("dead_lettered_ts") or 0))
    return docs
