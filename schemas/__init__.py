"""recloop's message contracts: one pydantic model per message, versioned, no I/O.

Workers, the producer and the generated JSON Schema files (``schemas/json/``) all derive
from these models, so a contract changes in exactly one place. Nothing here imports
``pipeline`` or ``faust``.
"""

from schemas.control import Control, ControlType
from schemas.dead_letter import DeadLetter, RejectReason
from schemas.events import SCHEMA_VERSION, Event, EventContext, EventType, Item
from schemas.recommendation import Recommendation, RecommendedItem
from schemas.validation import (
    Rejected,
    dead_letter_bytes,
    encode_recommendation,
    event_to_bytes,
    item_to_bytes,
    parse_control,
    parse_event,
    parse_item,
    recommendation_to_bytes,
)

__all__ = [
    "SCHEMA_VERSION",
    "Control",
    "ControlType",
    "DeadLetter",
    "Event",
    "EventContext",
    "EventType",
    "Item",
    "Recommendation",
    "RecommendedItem",
    "RejectReason",
    "Rejected",
    "dead_letter_bytes",
    "parse_control",
    "encode_recommendation",
    "event_to_bytes",
    "item_to_bytes",
    "parse_event",
    "parse_item",
    "recommendation_to_bytes",
]
