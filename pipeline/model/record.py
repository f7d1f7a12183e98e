"""What the shared models learn from one event: the ``LearnRecord``.

Records are commutative increments with public ids only (no user id: privacy), so any worker
can apply any other worker's records in any order (see ``pipeline.stores.model_log``).
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
        ]

    @classmethod
    def from_json(cls, raw: Sequence[object]) -> LearnRecord:
        """Inverse of ``to_json``."""
        item_id, ts, kind, weight, completion, segments, context = raw
        return cls(
            item_id=str(item_id),
            ts=int(ts),  # type: ignore[call-overload]
            kind=str(kind),
            weight=float(weight),  # type: ignore[arg-type]
            completion=None if completion is None else float(completion),  # type: ignore[arg-type]
            segments=tuple(str(s) for s in segments),  # type: ignore[attr-defined]
            context=tuple((str(i), float(w)) for i, w in context),  # type: ignore[attr-defined]
        )


def trend_segments(state: UserState) -> tuple[str, ...]:
    """Context segments a user's events count towards for trending."""
    out = []
    if state.context.locale:
        out.append(f"locale:{state.context.locale}")
    if state.context.device:
        out.append(f"device:{state.context.device}")
    return tuple(out)
