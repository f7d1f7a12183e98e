"""A/B experiments: declaration and deterministic assignment.

Experiments are declared in a JSON file (``RECLOOP_EXPERIMENTS_FILE``)::

    {"experiments": [{
        "name": "personalization-v1",
        "traffic": 1.0,                      # share of all users in this experiment
        "attribution_seconds": 1800,          # how long a list gets credit for actions
        "variants": [
            {"name": "control", "share": 0.5, "changes": {"personalized": false}},
            {"name": "treatment", "share": 0.5, "changes": {}}
        ]}]}

The first variant is the control arm. ``changes`` may set ``personalized`` and any ranking
knob of ``ListParams`` (``ranker_power``, ``rerank_depth``, ``rerank_mix``,
``category_weight``, ``popularity_weight``, ``trend_weight``, ``category_cap``,
``exploration_share``, ``new_item_share``, ``context_size``, ``recency_decay``,
``declared_weight``, ``declared_halfway``).

Assignment is a pure function of the experiment name and user id (SHA-256), so every
worker, restart and the API agree without shared state. Experiments are mutually exclusive:
a user is in at most one, drawn by a separate hash over the experiments' ``traffic`` shares.

Outcomes come from the event stream itself (``pipeline.lists.experiment_outcomes``): an
*action* is an event of an exposed user stamped within ``attribution_seconds`` of their
latest list; a *hit* is an action on an item of that list. Click-through = hits / actions;
completion rate = completed watches / watched hits; skip rate = skipped hits / hits; the
report analyses them per user (``pipeline.lists.experiment_report``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.lists.params import ListParams

ALLOWED_CHANGES = frozenset(
    {
        "personalized",
        "ranker_power",
        "rerank_depth",
        "rerank_mix",
        "category_weight",
        "popularity_weight",
        "trend_weight",
        "category_cap",
        "exploration_share",
        "new_item_share",
        "context_size",
        "recency_decay",
        "declared_weight",
        "declared_halfway",
    }
)


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm of an experiment."""

    name: str
    share: float
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Experiment:
    """A declared experiment; the first variant is the control."""

    name: str
    variants: tuple[Variant, ...]
    traffic: float = 1.0
    attribution_seconds: float = 1_800.0

    @property
    def control(self) -> Variant:
        """The arm others are compared with."""
        return self.variants[0]


def parse_experiments(doc: dict[str, Any]) -> tuple[Experiment, ...]:
    """Validate a declaration document; raises ``ValueError`` saying what is wrong."""
    out = []
    total_traffic = 0.0
    for raw in doc.get("experiments", []):
        name = str(raw["name"])
        variants = tuple(
            Variant(str(v["name"]), float(v["share"]), dict(v.get("changes", {})))
            for v in raw["variants"]
        )
        if len(variants) < 2:
            msg = f"experiment {name!r} needs at least two variants"
            raise ValueError(msg)
        if abs(sum(v.share for v in variants) - 1.0) > 1e-6:
            msg = f"experiment {name!r}: variant shares must sum to 1"
            raise ValueError(msg)
        for v in variants:
            unknown = set(v.changes) - ALLOWED_CHANGES
            if unknown:
                msg = f"experiment {name!r} variant {v.name!r}: unknown changes {sorted(unknown)}"
                raise ValueError(msg)
        traffic = float(raw.get("traffic", 1.0))
        total_traffic += traffic
        out.append(
            Experiment(name, variants, traffic, float(raw.get("attribution_seconds", 1_800)))
        )
    if total_traffic > 1.0 + 1e-6:
        msg = "experiments' traffic shares add up to more than 1"
        raise ValueError(msg)
    return tuple(out)


def load_experiments(path: Path | None) -> tuple[Experiment, ...]:
    """Experiments declared in a JSON file (none when ``path`` is None)."""
    if path is None:
        return ()
    return parse_experiments(orjson.loads(Path(path).read_bytes()))


def _unit(*parts: str) -> float:
    """A uniform number in [0, 1) from the parts (stable across processes and versions)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiments: tuple[Experiment, ...], user_id: str) -> tuple[Experiment, Variant] | None:
    """The user's experiment and arm, or ``None``.

    >>> e = parse_experiments({"experiments": [{"name": "x", "variants": [
    ...     {"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}]}]})
    >>> assign(e, "u1") == assign(e, "u1")
    True
    """
    point = _unit("recloop-layer", user_id)
    edge = 0.0
    for experiment in experiments:
        edge += experiment.traffic
        if point < edge:
            arm = _unit("recloop-arm", experiment.name, user_id)
            cumulative = 0.0
            for variant in experiment.variants:
                cumulative += variant.share
                if arm < cumulative:
                    return experiment, variant
            return experiment, experiment.variants[-1]
    return None


def reads_like_ranker(base: ListParams, experiments: tuple[Experiment, ...]) -> bool:
    """Whether any list a worker ranks reads the P(like) ranker (``ranker_power`` > 0).

    The worker trains that ranker only then (``ModelParams.like_ranker``): by default no
    list reads it, and its training is a quarter of the learn step.

    >>> e = parse_experiments({"experiments": [{"name": "x", "variants": [
    ...     {"name": "a", "share": 0.5}, {"name": "b", "share": 0.5,
    ...      "changes": {"ranker_power": 1.0}}]}]})
    >>> reads_like_ranker(ListParams(), ()), reads_like_ranker(ListParams(), e)
    (False, True)
    """
    arms = (variant_params(base, v)[0] for e in experiments for v in e.variants)
    return any(p.ranker_power > 0 for p in (base, *arms))


def variant_params(base: ListParams, variant: Variant) -> tuple[ListParams, bool]:
    """Ranking knobs of an arm and whether it personalises."""
    changes = {k: v for k, v in variant.changes.items() if k != "personalized"}
    return dataclasses.replace(base, **changes), bool(variant.changes.get("personalized", True))
