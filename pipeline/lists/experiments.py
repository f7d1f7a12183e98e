"""A/B experiments: declaration, deterministic assignment, outcome counting, the report.

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
knob of ``EngineParams`` (``ranker_power``, ``category_weight``, ``popularity_weight``,
``trend_weight``, ``category_cap``, ``exploration_share``, ``context_size``,
``recency_decay``, ``declared_weight``, ``declared_halfway``).

Assignment is a pure function of the experiment name and user id (SHA-256), so every
worker, restart and the API agree without shared state. Experiments are mutually exclusive:
a user is in at most one, drawn by a separate hash over the experiments' ``traffic`` shares.

Outcomes come from the event stream itself: an *action* is any event of an exposed user
within ``attribution_seconds`` of their latest list; a *hit* is an action on an item of
that list. Click-through = hits / actions; completion rate = completed watches / watched
hits; skip rate = skipped hits / hits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis

from pipeline.lists.recommend import EngineParams
from pipeline.stores.keys import RedisKeys

ALLOWED_CHANGES = frozenset(
    {
        "personalized",
        "ranker_power",
        "category_weight",
        "popularity_weight",
        "trend_weight",
        "category_cap",
        "exploration_share",
        "context_size",
        "recency_decay",
        "declared_weight",
        "declared_halfway",
    }
)
COUNTERS = ("exposures", "actions", "hits", "clicks", "watches", "completions", "skips")


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


def variant_params(base: EngineParams, variant: Variant) -> tuple[EngineParams, bool]:
    """Ranking knobs of an arm and whether it personalises."""
    changes = {k: v for k, v in variant.changes.items() if k != "personalized"}
    return dataclasses.replace(base, **changes), bool(variant.changes.get("personalized", True))


def outcome(event_type: str, item_in_list: bool, completed: bool) -> dict[str, int]:
    """Counter increments of one attributed action.

    >>> outcome("watch", True, True)
    {'actions': 1, 'hits': 1, 'watches': 1, 'completions': 1}
    """
    out = {"actions": 1}
    if item_in_list:
        out["hits"] = 1
        if event_type == "click":
            out["clicks"] = 1
        elif event_type == "watch":
            out["watches"] = 1
            if completed:
                out["completions"] = 1
        else:
            out["skips"] = 1
    return out


def attribute(
    experiments: tuple[Experiment, ...],
    seen: tuple[frozenset[str], int, str, str] | None,
    *,
    event_type: str,
    item_id: str,
    completed: bool,
    now_ms: int,
    outcomes: dict[tuple[str, str], dict[str, int]],
) -> None:
    """Credit an experiment user's action to the list they were last shown, if recent.

    ``seen`` is that list: (items, published ms, experiment, variant), or ``None`` when the
    user saw no experiment list. Counts add up in ``outcomes[(experiment, variant)]``.
    """
    if seen is None:
        return
    items, published, name, arm = seen
    window = next((e.attribution_seconds for e in experiments if e.name == name), 0.0)
    if now_ms - published > window * 1000:
        return
    counts = outcomes.setdefault((name, arm), {})
    for key, inc in outcome(event_type, item_id in items, completed).items():
        counts[key] = counts.get(key, 0) + inc


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def compare(hits_t: int, n_t: int, hits_c: int, n_c: int) -> dict[str, float | None]:
    """Lift of a proportion against control: 95 % CI of the difference and of the lift, p.

    Difference CI: unpooled normal approximation. Lift (``p_t / p_c - 1``) CI: delta method
    on the log ratio. p-value: two-sided pooled two-proportion z-test.
    """
    if not (n_t and n_c):
        return {"diff": None, "diff_low": None, "diff_high": None, "lift": None,
                "lift_low": None, "lift_high": None, "p_value": None}  # fmt: skip
    p_t, p_c = hits_t / n_t, hits_c / n_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    diff = p_t - p_c
    pooled = (hits_t + hits_c) / (n_t + n_c)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    z = diff / se0 if se0 else 0.0
    p_value = math.erfc(abs(z) / math.sqrt(2))
    lift = lift_low = lift_high = None
    if hits_t and hits_c:
        log_ratio = math.log(p_t / p_c)
        se_log = math.sqrt((1 - p_t) / hits_t + (1 - p_c) / hits_c)
        lift = p_t / p_c - 1
        lift_low = math.exp(log_ratio - 1.96 * se_log) - 1
        lift_high = math.exp(log_ratio + 1.96 * se_log) - 1
    return {"diff": diff, "diff_low": diff - 1.96 * se, "diff_high": diff + 1.96 * se,
            "lift": lift, "lift_low": lift_low, "lift_high": lift_high,
            "p_value": p_value}  # fmt: skip


def report(
    experiments: tuple[Experiment, ...],
    counters: dict[tuple[str, str], dict[str, int]],
    users: dict[tuple[str, str], int],
) -> list[dict[str, Any]]:
    """Per experiment and variant: exposure, outcomes, click-through lift against control."""
    out = []
    for experiment in experiments:
        control = counters.get((experiment.name, experiment.control.name), {})
        rows = []
        for variant in experiment.variants:
            c = counters.get((experiment.name, variant.name), {})
            row: dict[str, Any] = {
                "variant": variant.name,
                "share": variant.share,
                "changes": variant.changes,
                "users": users.get((experiment.name, variant.name), 0),
                **{name: int(c.get(name, 0)) for name in COUNTERS},
            }
            row["click_through"] = _ratio(row["hits"], row["actions"])
            row["completion_rate"] = _ratio(row["completions"], row["watches"])
            row["skip_rate"] = _ratio(row["skips"], row["hits"])
            if variant is not experiment.control:
                c_get = {k: int(control.get(k, 0)) for k in COUNTERS}
                row["vs_control"] = compare(
                    row["hits"], row["actions"], c_get["hits"], c_get["actions"]
                )
                row["completion_vs_control"] = compare(
                    row["completions"], row["watches"], c_get["completions"], c_get["watches"]
                )
                row["skip_vs_control"] = compare(
                    row["skips"], row["hits"], c_get["skips"], c_get["hits"]
                )
            rows.append(row)
        out.append({"experiment": experiment.name, "control": experiment.control.name,
                    "attribution_seconds": experiment.attribution_seconds,
                    "variants": rows})  # fmt: skip
    return out


def format_report(rows: list[dict[str, Any]]) -> str:
    """The report as text tables."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:6.2f}%"

    lines: list[str] = []
    for exp in rows:
        lines.append(f"experiment {exp['experiment']} (control: {exp['control']})")
        lines.append(
            f"  {'variant':<18}{'users':>7}{'lists':>8}{'actions':>9}{'hits':>7}"
            f"{'CTR':>9}{'complete':>10}{'skip':>9}"
        )
        for r in exp["variants"]:
            lines.append(
                f"  {r['variant']:<18}{r['users']:>7}{r['exposures']:>8}{r['actions']:>9}"
                f"{r['hits']:>7}{pct(r['click_through']):>9}{pct(r['completion_rate']):>10}"
                f"{pct(r['skip_rate']):>9}"
            )
        for r in exp["variants"]:
            for label, key in (
                ("CTR", "vs_control"),
                ("completion", "completion_vs_control"),
                ("skip rate", "skip_vs_control"),
            ):
                vs = r.get(key)
                if vs is None or vs["lift"] is None:
                    continue
                lines.append(
                    f"  {r['variant']} vs {exp['control']}: {label} {100 * vs['lift']:+.1f}% "
                    f"[95% CI {100 * vs['lift_low']:+.1f}%, {100 * vs['lift_high']:+.1f}%], "
                    f"p={vs['p_value']:.2g}"
                )
    return "\n".join(lines) if lines else "no experiments declared"


def read_counters(
    client: redis.Redis, keys: RedisKeys, experiments: tuple[Experiment, ...]
) -> tuple[dict[tuple[str, str], dict[str, int]], dict[tuple[str, str], int]]:
    """Outcome counters and exposed-user counts of every arm, from Redis (synchronous)."""
    arms = [(e.name, v.name) for e in experiments for v in e.variants]
    with client.pipeline(transaction=False) as pipe:
        for name, arm in arms:
            pipe.hgetall(keys.experiment(name, arm))
            pipe.pfcount(keys.experiment_users(name, arm))
        replies = pipe.execute()
    counters: dict[tuple[str, str], dict[str, int]] = {}
    users: dict[tuple[str, str], int] = {}
    for i, arm_key in enumerate(arms):
        raw, n_users = replies[2 * i], replies[2 * i + 1]
        counters[arm_key] = {k.decode(): int(v) for k, v in raw.items()}
        users[arm_key] = int(n_users)
    return counters, users
