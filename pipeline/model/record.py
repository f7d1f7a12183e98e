"""What the shared models learn from one event: the ``LearnRecord``.

Records are commutative increments with public ids only (no user id: privacy), so any worker
can apply any other worker's records in any order (see ``pipeline.stores.model_log``).

``first`` says the event is the user's first interaction with the item (popularity counts
users, not events); ``positive`` whether it is a positive; ``stage`` how many events the user
had before this one (``None``: not counted, e.g. personalization off). Stage popularity
counts positives per stage: what people choose early in their life with the product is not
what they choose later. They are the 8th to 10th positional fields of the log form; a
seven-field record written before them reads as a first interaction, not a positive, with
no stage (what it counted as then).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.features.state import UserState


@dataclass(frozen=True, slots=True)
class LearnRecord:
    """What the shared models learn from one event (public ids; no user id: privacy)."""

    item_id: str
    ts: int
    kind: str
    weight: float
    completion: float | None
    segments: tuple[str, ...]
    context: tuple[tuple[str, float], ...]
    first: bool = True
    positive: bool = False
    stage: int | None = None

    def to_json(self) -> list[object]:
        """Compact positional form for the model log."""
        return [
            self.item_id,
            self.ts,
            self.kind,
            self.weight,
            self.completion,
            list(self.segments),
            [list(c) for c in self.context],
            self.first,
            self.positive,
            self.stage,
        ]

    @classmethod
    def from_json(cls, raw: Sequence[object]) -> LearnRecord:
        """Inverse of ``to_json`` (a seven-field record from before ``first`` reads too)."""
        item_id, ts, kind, weight, completion, segments, context = raw[:7]
        first = bool(raw[7]) if len(raw) > 7 else True
        positive = bool(raw[8]) if len(raw) > 8 else False
        stage = raw[9] if len(raw) > 9 else None
        return cls(
            item_id=str(item_id),
            ts=int(ts),  # type: ignore[call-overload]
            kind=str(kind),
            weight=float(weight),  # type: ignore[arg-type]
            completion=None if completion is None else float(completion),  # type: ignore[arg-type]
            segments=tuple(str(s) for s in segments),  # type: ignore[attr-defined]
            context=tuple((str(i), float(w)) for i, w in context),  # type: ignore[attr-defined]
            first=first,
            positive=positive,
            stage=None if stage is None else int(stage),  # type: ignore[call-overload]
        )


def trend_segments(state: UserState) -> tuple[str, ...]:
    """Context segments a user's events count towards for trending."""
    out = []
    if state.context.locale:
        out.append(f"locale:{state.context.locale}")
    if state.context.device:
        out.append(f"device:{state.context.device}")
    return tuple(out)
