"""User-level statistics of an A/B experiment: the delta method over per-user sums.

Users are randomised, not actions: one user's clicks, watches and skips are correlated, so
treating every action as an independent trial (``n`` = actions) underestimates the standard
error, often by a lot. For a ratio metric ``R = sum_u x_u / sum_u y_u`` (click-through:
``x`` = hits, ``y`` = actions of user ``u``) the delta method gives, with ``n`` users,

    Var(R) ~ (s_xx / m_y**2 - 2 m_x s_xy / m_y**3 + m_x**2 s_yy / m_y**4) / n

where ``m`` are per-user means and ``s`` per-user (co)variances. All of it comes from six
sufficient statistics per arm and metric, ``n, Sx, Sy, Sxx, Syy, Sxy`` (sums over users),
which the worker keeps up to date event by event (``pipeline.stores.experiments``). A mean
per user (events per user) is the ratio with ``y_u = 1``, a retention rate the ratio with
``x_u`` in {0, 1} and ``y_u = 1`` for users eligible for it.

The difference of two arms has the sum of their variances; the relative lift
``R_t / R_c - 1`` gets its interval from the delta method on ``log R_t - log R_c``.

>>> control = Sums.of([(1, 10), (2, 10), (0, 5), (3, 12)])
>>> round(ratio_se(control), 4)
0.0473
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Sums:
    """Sufficient statistics of a ratio metric over the users of one arm."""

    n: float = 0.0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    syy: float = 0.0
    sxy: float = 0.0

    @classmethod
    def of(cls, users: Iterable[tuple[float, float]]) -> Sums:
        """From per-user ``(x_u, y_u)`` pairs (tests, benchmarks)."""
        n = sx = sy = sxx = syy = sxy = 0.0
        for x, y in users:
            n += 1
            sx += x
            sy += y
            sxx += x * x
            syy += y * y
            sxy += x * y
        return cls(n, sx, sy, sxx, syy, sxy)

    def add_user(self, x: float, y: float) -> Sums:
        """These sums with one more user."""
        return Sums(
            self.n + 1,
            self.sx + x,
            self.sy + y,
            self.sxx + x * x,
            self.syy + y * y,
            self.sxy + x * y,
        )

    @property
    def ratio(self) -> float | None:
        """``sum x / sum y`` (None without any denominator)."""
        return self.sx / self.sy if self.sy else None


def ratio_variance(s: Sums) -> float | None:
    """Delta-method variance of ``s.ratio`` (None below two users or without a ratio)."""
    if s.n < 2 or not s.sy:
        return None
    n = s.n
    mx, my = s.sx / n, s.sy / n
    vxx = max(0.0, (s.sxx - n * mx * mx) / (n - 1))
    vyy = max(0.0, (s.syy - n * my * my) / (n - 1))
    cxy = (s.sxy - n * mx * my) / (n - 1)
    var = (vxx / my**2 - 2 * mx * cxy / my**3 + mx**2 * vyy / my**4) / n
    return max(0.0, var)


def ratio_se(s: Sums) -> float:
    """Standard error of ``s.ratio`` (``nan`` when undefined)."""
    var = ratio_variance(s)
    return math.sqrt(var) if var is not None else math.nan


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment against control on one metric, with 95 % intervals and a p-value."""

    control: float | None
    treatment: float | None
    diff: float | None
    diff_low: float | None
    diff_high: float | None
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    p_value: float | None


_NONE = Comparison(None, None, None, None, None, None, None, None, None)


def compare(treatment: Sums, control: Sums) -> Comparison:
    """Difference and relative lift of the treatment's ratio, user-level (delta method).

    >>> c = compare(Sums.of([(2, 10)] * 50 + [(4, 10)] * 50), Sums.of([(2, 10)] * 100))
    >>> round(c.lift, 2), c.p_value < 0.001
    (0.5, True)
    """
    rt, rc = treatment.ratio, control.ratio
    vt, vc = ratio_variance(treatment), ratio_variance(control)
    if rt is None or rc is None or vt is None or vc is None:
        return Comparison(rc, rt, None, None, None, None, None, None, None)
    diff = rt - rc
    se = math.sqrt(vt + vc)
    p = math.erfc(abs(diff) / se / math.sqrt(2)) if se > 0 else (1.0 if diff == 0 else 0.0)
    lift = lift_low = lift_high = None
    if rt > 0 and rc > 0:
        se_log = math.sqrt(vt / rt**2 + vc / rc**2)
        log_ratio = math.log(rt / rc)
        lift = rt / rc - 1
        lift_low = math.exp(log_ratio - Z95 * se_log) - 1
        lift_high = math.exp(log_ratio + Z95 * se_log) - 1
    return Comparison(rc, rt, diff, diff - Z95 * se, diff + Z95 * se, lift, lift_low, lift_high, p)


def action_level_compare(hits_t: int, n_t: int, hits_c: int, n_c: int) -> Comparison:
    """The naive two-proportion comparison over actions (kept to show why it misleads).

    It treats every action as an independent trial; on per-user correlated data its
    intervals are too narrow (``tests/unit/lists/test_experiment_stats.py`` shows by how much).
    """
    if not (n_t and n_c):
        return _NONE
    p_t, p_c = hits_t / n_t, hits_c / n_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    diff = p_t - p_c
    pooled = (hits_t + hits_c) / (n_t + n_c)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p = math.erfc(abs(diff / se0) / math.sqrt(2)) if se0 else None
    lift = lift_low = lift_high = None
    if hits_t and hits_c:
        se_log = math.sqrt((1 - p_t) / hits_t + (1 - p_c) / hits_c)
        log_ratio = math.log(p_t / p_c)
        lift = p_t / p_c - 1
        lift_low = math.exp(log_ratio - Z95 * se_log) - 1
        lift_high = math.exp(log_ratio + Z95 * se_log) - 1
    return Comparison(
        p_c, p_t, diff, diff - Z95 * se, diff + Z95 * se, lift, lift_low, lift_high, p
    )


def sample_ratio_mismatch(users: dict[str, float], shares: dict[str, float]) -> tuple[float, float]:
    """Chi-square statistic and p-value of users per arm against the configured shares.

    A small p-value (README flags p < 0.001) means assignment or exposure is broken: the
    arms are not comparable, whatever their metrics say.

    >>> stat, p = sample_ratio_mismatch({"a": 500, "b": 500}, {"a": 0.5, "b": 0.5})
    >>> stat, round(p, 3)
    (0.0, 1.0)
    """
    total = sum(users.values())
    if total <= 0 or len(shares) < 2:
        return 0.0, 1.0
    stat = 0.0
    for arm, share in shares.items():
        expected = total * share
        if expected > 0:
            stat += (users.get(arm, 0.0) - expected) ** 2 / expected
    return stat, chi2_sf(stat, len(shares) - 1)


def chi2_sf(x: float, df: int) -> float:
    """Survival function of the chi-square distribution (regularised upper gamma).

    >>> round(chi2_sf(3.841458820694124, 1), 4)
    0.05
    """
    if x <= 0:
        return 1.0
    return _gamma_q(df / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    """Q(a, x) by its series (x < a + 1) or continued fraction (Numerical Recipes 6.2)."""
    gln = math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(500):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - gln))
    b = x + 1.0 - a
    c = 1.0 / 1e-300
    d = 1.0 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(-x + a * math.log(x) - gln) * h)
