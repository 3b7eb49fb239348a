"""Statistics for reports and `compare`: repeat summaries with their spread, and the change of a
pair in log space (positive = slower) with its one-sided confidence bounds from rank tests.

Paired rounds (`regress`): the Hodges-Lehmann estimate of the pair-means of consecutive rounds in
opposite orders, with the Wilcoxon signed-rank test; unpaired repeats: the Hodges-Lehmann shift with
the Mann-Whitney U test. Both are exact for small counts (scipy), robust to one stalled round, and
vectorised over leading axes so that `bench/detector.py` runs the same code over many trials.
Alpha spending over the sequential looks of a gate is here too.

Pure functions of numbers; nothing here reads the store. The repeat maths itself (median, IQR, CV)
lives in `orchestrator.analysis.summary` and is reused here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Optional

import numpy as np

from orchestrator.analysis.summary import percentile, summarize_repeats


@dataclass(frozen=True)
class Summary:
    """A cell's ok repeats: `orchestrator.analysis.summary`'s median / IQR / CV, plus the quartiles and the
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


MIN_ROUNDS_FOR_OUTLIERS = 8  # below, a group of one order has too few rounds to tell which is off
OUTLIER_Z = 5.0  # robust SDs from its order's median beyond which a round may be a stall …
OUTLIER_JUMP = math.log(1.25)  # … if it is also more than 25 % off (a stall at half speed is 100 %)
RHO = 3.0  # exponent of the power-family alpha-spending function alpha * (n / N) ** RHO
# Asymptotic relative efficiency of the rank tests to the t-test under normal noise (3/pi): they need
# about 1/0.955 times the pairs or repeats for the same power (used only to project rounds needed).
RANK_TEST_EFFICIENCY = 3 / math.pi
POWER = 0.95  # what a projection of the rounds needed aims for
MAX_PROJECTED = 1000  # pairs (or repeats per side) beyond which a projection only says "more than"


def alpha_spent(alpha: float, rounds: int, horizon: int) -> float:
    """Alpha that looks up to `rounds` of a gate planned for `horizon` rounds may have used."""
    return alpha * min(1.0, rounds / horizon) ** RHO


def look_alpha(alpha: float, looks: tuple[int, ...], rounds: int) -> float:
    """The share of alpha a look after `rounds` rounds spends, with looks planned after `looks` rounds.

    Shares add up to at most alpha over all planned looks, so by the union bound the chance of an
    error at any look stays at most alpha whichever look the gate stops at (early looks spend little:
    (5/20)^3 of alpha). A look between planned ones spends what accrued since the one before it."""
    horizon = looks[-1]
    at = min(rounds, horizon)
    earlier = max((n for n in looks if n < at), default=0)
    return alpha_spent(alpha, at, horizon) - alpha_spent(alpha, earlier, horizon)


class Test(Enum):
    SIGNED_RANK = "Wilcoxon signed-rank"  # pair-means of rounds in both orders
    RANK_SUM = "Mann-Whitney U"  # two unpaired sets of repeats


@dataclass(frozen=True)
class Shift:
    """A pair's change in log space (positive: the candidate is slower), what its rank test says, and
    one-sided confidence bounds: `low` at the regression level, `high` at the pass level."""

    test: Test
    sizes: tuple[int, ...]  # (pairs,) or (baseline repeats, candidate repeats)
    estimate: float  # Hodges-Lehmann
    low: float
    high: float
    p_slower: float  # H0 "not slower at all" (delta <= 0) against "slower"
    p_not_slower: float  # H0 "slower by the margin or more" (delta >= margin) against "less"
    p_faster: float  # H0 "faster by less than the margin" (delta >= -margin) against "faster by more"
    spread: float  # robust standard deviation of one pair-mean or repeat (1.4826 MAD), for projections


def walsh_averages(values: np.ndarray) -> np.ndarray:
    """All (x_i + x_j) / 2 with i <= j along the last axis: their median is the Hodges-Lehmann estimate."""
    i, j = np.triu_indices(values.shape[-1])
    return (values[..., i] + values[..., j]) / 2


def p_signed_rank(values: np.ndarray, alternative: str) -> np.ndarray:
    """One-sided Wilcoxon signed-rank p-values along the last axis (exact where scipy can be; zeros split).

    scipy is imported here, not at the top: it costs two seconds every other command would pay."""
    from scipy.stats import wilcoxon

    return np.asarray(wilcoxon(values, alternative=alternative, zero_method="zsplit", axis=-1).pvalue)


def p_rank_sum(candidate: np.ndarray, baseline: np.ndarray, alternative: str) -> np.ndarray:
    """One-sided Mann-Whitney U p-values of 'candidate values tend to be {alternative} than baseline's'."""
    from scipy.stats import mannwhitneyu

    return np.asarray(mannwhitneyu(candidate, baseline, alternative=alternative, axis=-1).pvalue)


def smallest_signed_rank_p(pairs: int) -> float:
    """The smallest one-sided p an exact signed-rank test over `pairs` values can give: every sign alike."""
    return 0.5**pairs


def smallest_rank_sum_p(n_baseline: int, n_candidate: int) -> float:
    """The smallest one-sided p an exact Mann-Whitney U test can give: 1 / C(n1 + n2, n1)."""
    if n_baseline < 1 or n_candidate < 1:
        return 1.0
    return 1.0 / math.comb(n_baseline + n_candidate, n_baseline)


def paired_decisions(pair_means: np.ndarray, margin: float) -> tuple[np.ndarray, ...]:
    """(estimate, p_slower, p_not_slower, p_faster, pairs) of pair-means along the last axis, NaN
    (dropped pairs) left out: rows are grouped by how many pairs they keep, one scipy call per group."""
    values = np.sort(pair_means, axis=-1)  # NaN last; the tests and the estimate ignore the order
    kept = np.sum(~np.isnan(values), axis=-1)
    found = np.full((4, *kept.shape), np.nan)
    for count in np.unique(kept):
        rows = kept == count
        if count == 0:
            found[1:, rows] = 1.0
            continue
        sub = values[rows][..., :count]
        found[:, rows] = (
            np.median(walsh_averages(sub), axis=-1),
            p_signed_rank(sub, "greater"),
            p_signed_rank(sub - margin, "less"),
            p_signed_rank(sub + margin, "less"),
        )
    return (*found, kept)


def paired_shift(pair_means: list[float], margin: float, alpha_pass: float, alpha_regression: float) -> Shift:
    """The signed-rank view of one pair's pair-means, with bounds found by inverting the same test."""
    values = np.asarray(pair_means, dtype=float)
    estimate, p_slower, p_not_slower, p_faster, _ = paired_decisions(values, margin)
    walsh = np.unique(walsh_averages(values))
    return Shift(
        test=Test.SIGNED_RANK,
        sizes=(len(values),),
        estimate=float(estimate),
        low=_bound(walsh, lambda at: p_signed_rank(values - at[:, None], "greater"), alpha_regression, upper=False),
        high=_bound(walsh, lambda at: p_signed_rank(values - at[:, None], "less"), alpha_pass, upper=True),
        p_slower=float(p_slower),
        p_not_slower=float(p_not_slower),
        p_faster=float(p_faster),
        spread=_robust_sd(values),
    )


def unpaired_shift(
    baseline: list[float], candidate: list[float], margin: float, alpha_pass: float, alpha_regression: float
) -> Shift:
    """The rank-sum view of two sets of oriented log values (higher: slower): the Hodges-Lehmann shift."""
    base, cand = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    differences = np.unique(np.subtract.outer(cand, base))
    pooled = np.concatenate([base - np.median(base), cand - np.median(cand)])
    return Shift(
        test=Test.RANK_SUM,
        sizes=(len(base), len(cand)),
        estimate=float(np.median(np.subtract.outer(cand, base))),
        low=_bound(differences, lambda at: p_rank_sum(cand - at[:, None], base, "greater"), alpha_regression, False),
        high=_bound(differences, lambda at: p_rank_sum(cand - at[:, None], base, "less"), alpha_pass, upper=True),
        p_slower=float(p_rank_sum(cand, base, "greater")),
        p_not_slower=float(p_rank_sum(cand - margin, base, "less")),
        p_faster=float(p_rank_sum(cand + margin, base, "less")),
        spread=_robust_sd(pooled),
    )


def _bound(points: np.ndarray, p_at: Callable[[np.ndarray], np.ndarray], alpha: float, upper: bool) -> float:
    """A one-sided confidence bound by test inversion: the test's p is a step function of the shift,
    stepping only at the sorted `points` (Walsh averages or pairwise differences), so it is tried
    between each two (one scipy call); infinite when no shift is rejected at `alpha`."""
    cuts = np.concatenate([[points[0] - 1], (points[:-1] + points[1:]) / 2, [points[-1] + 1]])
    rejected = np.flatnonzero(p_at(cuts) <= alpha)
    if not rejected.size:
        return math.inf if upper else -math.inf
    return float(points[rejected[0] - 1]) if upper else float(points[rejected[-1]])


def _robust_sd(values: np.ndarray) -> float:
    """1.4826 times the median absolute deviation: a standard deviation one stalled value cannot inflate."""
    return float(1.4826 * np.median(np.abs(values - np.median(values)))) if values.size else 0.0


def pairs_needed(spread: float, gap: float, alpha: float, power: float = POWER) -> Optional[int]:
    """Pairs (or repeats per side, with `spread` scaled by sqrt 2 by the caller) at which a one-sided
    rank test at `alpha` puts its bound `gap` away from the estimate with probability `power`.

    From Student's t with the pairs' own degrees of freedom (n - 1), widened by the rank tests'
    efficiency, and never below the pairs the exact test needs to reach alpha at all; None beyond
    `MAX_PROJECTED`."""
    from scipy.stats import t as student_t

    least = math.ceil(math.log2(1 / alpha))  # 0.5 ** n <= alpha
    for n in range(max(2, least), MAX_PROJECTED + 1):
        reach = (student_t.ppf(1 - alpha, n - 1) + student_t.ppf(power, n - 1)) * spread
        if reach / math.sqrt(n * RANK_TEST_EFFICIENCY) < gap:
            return n
    return None


def pair_means(differences: np.ndarray, candidate_second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means of rounds (0, 1), (2, 3), … (one of each order: an additive order effect cancels) along
    the last axis; and the mask of outlying rounds (`outlying_rounds`).

    A pair with one outlying round keeps its other round, less the order effect estimated from the
    clean pairs (the median half-difference): still symmetric about the change, so the signed-rank
    test stays valid, and one stall costs half a pair instead of one. Both rounds off: NaN."""
    flagged = outlying_rounds(differences, candidate_second)
    m = differences.shape[-1] // 2
    first, second = differences[..., 0 : 2 * m : 2], differences[..., 1 : 2 * m : 2]
    first_off, second_off = flagged[..., 0 : 2 * m : 2], flagged[..., 1 : 2 * m : 2]
    sign = np.where(candidate_second[0 : 2 * m : 2], 1.0, -1.0)  # +1: the pair's first round is A B
    half = np.where(first_off | second_off, np.nan, (first - second) / 2 * sign)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all NaN: no clean pair, no order estimate
        order = np.nanmedian(half, axis=-1, keepdims=True)
    means = np.select(
        [first_off & second_off, first_off, second_off],
        [np.nan, second + order * sign, first - order * sign],
        (first + second) / 2,
    )
    return means, flagged


def round_z(differences: np.ndarray, candidate_second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each round's residual from the median of the rounds of its own order (so an order effect is
    no outlier), and that residual in robust standard deviations (1.4826 MAD of all residuals)."""
    residuals = np.empty_like(differences)
    for order in (True, False):
        group = candidate_second == order
        residuals[..., group] = differences[..., group] - np.median(differences[..., group], axis=-1, keepdims=True)
    scale = 1.4826 * np.median(np.abs(residuals), axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return residuals, np.where(residuals == 0, 0.0, residuals / scale)


def outlying_rounds(differences: np.ndarray, candidate_second: np.ndarray) -> np.ndarray:
    """Rounds both more than `OUTLIER_Z` robust SDs and more than `OUTLIER_JUMP` off their order's
    median; none below `MIN_ROUNDS_FOR_OUTLIERS`. The jump keeps ordinary noise from being flagged:
    MAD from a dozen rounds is a noisy scale, and leaving out a round chosen by its sign would tilt
    the rank test (simulated: false flags inflated its level by about a point before the jump)."""
    if differences.shape[-1] < MIN_ROUNDS_FOR_OUTLIERS:
        return np.zeros(differences.shape, dtype=bool)
    residuals, z = round_z(differences, candidate_second)
    return (np.abs(z) > OUTLIER_Z) & (np.abs(residuals) > OUTLIER_JUMP)
