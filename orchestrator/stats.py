"""Statistics for reports and `compare`: repeat summaries with their spread, and the rank test.

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
