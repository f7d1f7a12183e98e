"""What the shared models learn from one event: the ``LearnRecord``.

Records are commutative increments with public ids only (no user id: privacy), so any worker
can apply any other worker's records in any order (see ``pipeline.stores.model_log``).

``first`` says the event is the user's first interaction with the item (popularity counts
users, not events). It is the eighth positional field of the log form; a seven-field record
written before it reads as a first interaction (what every event counted as then).
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
        ]

    @classmethod
    def from_json(cls, raw: Sequence[object]) -> LearnRecord:
        """Inverse of ``to_json`` (a seven-field record from before ``first`` reads too)."""
        item_id, ts, kind, weight, completion, segments, context = raw[:7]
        first = bool(raw[7]) if len(raw) > 7 else True
        return cls(
            item_id=str(item_id),
            ts=int(ts),  # type: ignore[call-overload]
            kind=str(kind),
            weight=float(weight),  # type: ignore[arg-type]
            completion=None if completion is None else float(completion),  # type: ignore[arg-type]
            segments=tuple(str(s) for s in segments),  # type: ignore[attr-defined]
            context=tuple((str(i), float(w)) for i, w in context),  # type: ignore[attr-defined]
            first=first,
        )


def trend_segments(state: UserState) -> tuple[str, ...]:
    """Context segments a user's events count towards for trending."""
    out = []
    if state.context.locale:
        out.append(f"locale:{state.context.locale}")
    if state.context.device:
        out.append(f"device:{state.context.device}")
    return tuple(out)
