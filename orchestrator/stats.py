"""Statistics for reports and `compare`: repeat summaries with their spread, the rank test, and the
blocked (paired) fit of rounds that separates an order effect from a change.

Pure functions of lists of numbers; nothing here reads the store. The repeat maths itself (median,
IQR, CV) lives in `orchestrator.summary` and is reused here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Optional

from orchestrator.summary import percentile, summarize_repeats


@dataclass(frozen=True)
class Summary:
    """A cell's ok repeats: `orchestrator.summary`'s median / IQR / CV, plus the quartiles and the
    range that error bars are drawn from."""

    n: int
    median: float
    q1: float
    q3: float
    low: float
    high: float
    cv: Optional[float]  # sample standard deviation / mean; None below two repeats


def summarize(values: list[float]) -> Optional[Summary]:
    if not values:
        return None
    repeats = summarize_repeats(values)
    return Summary(
        n=repeats.n,
        median=repeats.median,
        q1=percentile(values, 25),
        q3=percentile(values, 75),
        low=min(values),
        high=max(values),
        cv=repeats.cv,
    )


def smallest_p(n_baseline: int, n_candidate: int) -> float:
    """The smallest one-sided p-value an exact Mann-Whitney U test can give for these sample sizes
    (every candidate value beyond every baseline value): 1 / C(n1 + n2, n1)."""
    if n_baseline < 1 or n_candidate < 1:
        return 1.0
    return 1.0 / math.comb(n_baseline + n_candidate, n_baseline)


def p_lower(baseline: list[float], candidate: list[float]) -> float:
    """One-sided Mann-Whitney U p-value for 'candidate values tend to be lower than baseline's'.

    Exact where there are no ties (small repeat counts are the usual case), else the normal
    approximation with tie correction that scipy picks. scipy is imported here, not at the top:
    it costs two seconds that every other command would otherwise pay at start-up.
    """
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(candidate, baseline, alternative="less", method="auto").pvalue)


def relative_change(baseline: float, candidate: float) -> float:
    return candidate / baseline - 1.0


# Asymptotic relative efficiency of the rank test to the t-test under normal noise (3/pi): the rank
# test needs about 1/0.955 times the repeats for the same power.
RANK_TEST_EFFICIENCY = 3 / math.pi
POWER = 0.95


def detectable_change(cv: float, n_baseline: int, n_candidate: int, alpha: float, power: float = POWER) -> float:
    """The relative slowdown the one-sided rank test finds with probability `power` at level `alpha`,
    given repeat noise `cv` (normal approximation, corrected by the rank test's efficiency).

    It tells a "no change" verdict apart from "could not have seen it": at CV 10 % and 5 vs 5
    repeats only slowdowns beyond ~21 % are reliably found."""
    z = NormalDist().inv_cdf(1 - alpha) + NormalDist().inv_cdf(power)
    return z * cv * math.sqrt((1 / n_baseline + 1 / n_candidate) / RANK_TEST_EFFICIENCY)


def repeats_needed(cv: float, change: float, alpha: float, power: float = POWER) -> int:
    """Repeats per side for `detectable_change` to come down to `change`."""
    z = NormalDist().inv_cdf(1 - alpha) + NormalDist().inv_cdf(power)
    return math.ceil(2 * (z * cv / change) ** 2 / RANK_TEST_EFFICIENCY)


@dataclass(frozen=True)
class BlockedFit:
    """Least squares of per-round log ratios l_r = delta + omega * o_r (o_r = +1 when the candidate
    ran second, -1 when first): omega is the order effect, delta the change once it is taken out."""

    n: int
    delta: float
    omega: float
    delta_se: float
    omega_se: float
    noise: float  # residual standard deviation of one round's log ratio

    @property
    def df(self) -> int:
        return self.n - 2

    def p_delta_below_zero(self) -> float:
        """One-sided t-test of H0 delta >= 0 against delta < 0."""
        return _t_below(self.delta, self.delta_se, self.df)

    def p_delta_above_zero(self) -> float:
        return _t_below(-self.delta, self.delta_se, self.df)

    def p_order(self) -> float:
        """Two-sided t-test of "no order effect"."""
        return min(1.0, 2 * _t_below(-abs(self.omega), self.omega_se, self.df))

    def reach(self, alpha: float, power: float = POWER) -> float:
        """The |delta| (log scale) the one-sided test finds with probability `power` at level `alpha`."""
        return t_reach(self.delta_se, self.df, alpha, power)


def t_reach(se: float, df: int, alpha: float, power: float = POWER) -> float:
    """The effect a one-sided t-test with this standard error finds with probability `power` at level
    `alpha` (the blocked test's `detectable_change`)."""
    from scipy.stats import t as student_t

    return float(student_t.ppf(1 - alpha, df) + student_t.ppf(power, df)) * se


def blocked_fit(log_ratios: list[float], candidate_second: list[bool]) -> BlockedFit:
    """Fit the blocked design; needs at least 3 rounds with both orders (else delta and omega are
    confounded or no degree of freedom is left for the noise)."""
    import numpy as np

    design = np.column_stack([np.ones(len(log_ratios)), np.where(candidate_second, 1.0, -1.0)])
    y = np.asarray(log_ratios, dtype=float)
    (delta, omega), *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ np.array([delta, omega])
    variance = float(residuals @ residuals) / (len(y) - 2)
    covariance = variance * np.linalg.inv(design.T @ design)
    return BlockedFit(
        n=len(y),
        delta=float(delta),
        omega=float(omega),
        delta_se=math.sqrt(covariance[0, 0]),
        omega_se=math.sqrt(covariance[1, 1]),
        noise=math.sqrt(variance),
    )


def _t_below(estimate: float, se: float, df: int) -> float:
    """P(T <= estimate / se) under Student's t; a noise-free fit (se 0) is certain either way."""
    from scipy.stats import t as student_t

    if se == 0:
        return 0.0 if estimate < 0 else 1.0
    return float(student_t.cdf(estimate / se, df))
