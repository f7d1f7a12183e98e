"""One set of length limits for every id and short string of the contracts.

Each limit is enforced in one place, the pydantic models (so the workers' parser, the
producer, the HTTP API's request bodies and the exported JSON Schemas agree), and the HTTP
API's path and query parameters use the same constants, so an id a worker accepts can always
be read and forgotten through the API, and an id the API refuses is dead-lettered by a
worker (``invalid_value``). Lengths count characters (Unicode code points), as JSON Schema's
``maxLength`` does.

=========================  =====  =========================================================
limit                      value  applies to
=========================  =====  =========================================================
``MAX_ID_LENGTH``            256  ``user_id``, ``item_id``, ``event_id``, ``control_id``,
                                  ``creator_id``, ``trigger_event_id``
``MAX_CATEGORY_LENGTH``      128  a category (item ``categories``, mute ``category``,
                                  ``declare_interests`` ``categories``)
``MAX_CATEGORIES``            32  categories of one item or one declaration
``MAX_CONTEXT_LENGTH``        64  ``context.device``, ``context.locale``, ``context.surface``
``MAX_TITLE_LENGTH``         512  item ``title``
``MAX_REASON_LENGTH``        256  ``not_interested`` ``reason``
=========================  =====  =========================================================

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Identifier).validate_python("u" * MAX_ID_LENGTH) == "u" * 256
True
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, StrictStr

MAX_ID_LENGTH: Final = 256
"""Longest id: a UUID, a hash or a URL-safe slug fits many times; Redis keys stay short."""

MAX_CATEGORY_LENGTH: Final = 128
"""Longest category label (categories also name segments and trending keys)."""

MAX_CATEGORIES: Final = 32
"""Most categories on one item or in one declaration (a user keeps 32 affinities)."""

MAX_CONTEXT_LENGTH: Final = 64
"""Longest context value (``device``, ``locale``, ``surface``): they name segments."""

MAX_TITLE_LENGTH: Final = 512
"""Longest item title (shown in reasons and the console)."""

MAX_REASON_LENGTH: Final = 256
"""Longest free-text reason of a ``not_interested`` control (kept per user)."""

Identifier = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]
"""An id: non-empty (an empty id would merge unrelated users or items) and bounded."""

Category = Annotated[StrictStr, Field(min_length=1, max_length=MAX_CATEGORY_LENGTH)]
"""A category label: non-empty and bounded."""

ContextValue = Annotated[StrictStr, Field(max_length=MAX_CONTEXT_LENGTH)]
"""A context value (empty means unknown, as before)."""

Title = Annotated[StrictStr, Field(max_length=MAX_TITLE_LENGTH)]
"""An item's display title."""

Reason = Annotated[StrictStr, Field(max_length=MAX_REASON_LENGTH)]
"""Free text a user gave with a control."""
