"""`compare.judge` on rounds as `regress` stores them: pair-means of opposite-order rounds, the
signed-rank bounds, the three answers, an outlying round, and the edge cases (n = 1, 2, ties, zero
variance, 0 img/s)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import wilcoxon

from orchestrator.analysis.compare import Pair, Settings, Verdict, judge, opposite_order_pairs, rounds
from orchestrator.analysis.stats import paired_shift, pairs_needed, walsh_averages
from orchestrator.status import CellStatus
from tests.unit.analysis.test_compare import cell

ORDER_EFFECT = 1.05  # whichever build runs second in a round is 5 % slower


def rounds_of(
    base_speeds: list[float], cand_speeds: list[float], candidate_second: list[bool], repeats: int = 1
) -> tuple[list[dict], list[dict]]:
    """Rows as `regress` stores them: one run per round, each side's `repeats` cells in the order they ran."""
    base, cand = [], []
    for index, (b, c, second) in enumerate(zip(base_speeds, cand_speeds, candidate_second)):
        ran = [("1", b, base), ("2", c, cand)]
        for position, (version, speed, rows) in enumerate(ran[::-1] if not second else ran):
            for repeat in range(repeats):
                row = cell(version, "mlp", speed, repeat=repeat)
                rows.append(replace(row, run_id=f"r{index}", id=100 * index + 10 * position + repeat))
    return base, cand


def alternating(n: int) -> list[bool]:
    """A B, B A, …: the candidate runs second in rounds 0, 2, 4, …"""
    return [index % 2 == 0 for index in range(n)]


def gate_rounds(
    n: int, slowdown: float = 1.0, noise: float = 0.005, order_effect: float = ORDER_EFFECT, seed: int = 3
) -> tuple[list[float], list[float]]:
    """img/s of `n` alternating rounds sharing a drifting machine state; the second runner loses `order_effect`."""
    rng = np.random.default_rng(seed)
    state = 1000 * np.exp(rng.normal(0, 0.05, n))  # drift between rounds, shared by both sides of a round
    base = state * np.exp(rng.normal(0, noise, n))
    cand = state * np.exp(rng.normal(0, noise, n)) / slowdown
    second = alternating(n)
    base = [b / order_effect if not s else b for b, s in zip(base, second)]
    cand = [c / order_effect if s else c for c, s in zip(cand, second)]
    return base, cand


def judged(base: list[float], cand: list[float]) -> Pair:
    return judge("x", *rounds_of(base, cand, alternating(len(base))), Settings())


def test_a_pure_order_effect_is_not_slower():
    pair = judged(*gate_rounds(14))
    assert pair.verdict is Verdict.NOT_SLOWER and pair.change == pytest.approx(0, abs=0.005)
    assert pair.rounds == "14 rounds (7 pairs)" and pair.shift.high < math.log(1.05)


def test_a_real_slowdown_with_an_order_effect_is_a_regression_of_its_own_size():
    pair = judged(*gate_rounds(14, slowdown=1.10))
    assert pair.verdict is Verdict.REGRESSION and pair.change == pytest.approx(0.10, abs=0.01)
    assert pair.shift.low > 0 and pair.p_value == pytest.approx(1 / 128)


def test_time_and_throughput_give_the_same_verdict():
    """The issue's case: time x 1.051 is one shift in log space whichever metric is judged."""
    base, cand = gate_rounds(14, slowdown=1.051, noise=0.002)
    speed = judged(base, cand)
    rows = rounds_of(base, cand, alternating(14))
    timed = [
        [replace(row, metrics={"train_seconds": 6000 / row.metrics["train_img_per_s"]}) for row in side]
        for side in rows
    ]
    time = judge("x", *timed, Settings(metric="train_seconds"))
    assert speed.verdict is time.verdict is Verdict.REGRESSION
    assert speed.change == pytest.approx(time.change) and speed.shift.high == pytest.approx(time.shift.high)


def test_the_bounds_invert_scipys_signed_rank_test():
    values = np.random.default_rng(4).normal(0.02, 0.03, 9)
    shift = paired_shift(list(values), math.log(1.05), alpha_pass=0.05, alpha_regression=0.02)
    walsh = np.sort(walsh_averages(values))
    assert shift.estimate == pytest.approx(np.median(walsh))
    # just above the upper bound "delta >= bound" is rejected at 0.05, just below it is not
    assert wilcoxon(values - (shift.high + 1e-9), alternative="less").pvalue <= 0.05
    assert wilcoxon(values - (shift.high - 1e-9), alternative="less").pvalue > 0.05
    assert wilcoxon(values - (shift.low - 1e-9), alternative="greater").pvalue <= 0.02
    assert wilcoxon(values - (shift.low + 1e-9), alternative="greater").pvalue > 0.02
    assert shift.p_not_slower == pytest.approx(wilcoxon(values - math.log(1.05), alternative="less").pvalue)


def test_a_stalled_round_neither_hides_a_regression_nor_invents_one_and_is_named():
    base, cand = gate_rounds(14, slowdown=1.10)
    base[5] /= 2  # the baseline at half speed in round 6: the candidate looks 2x faster there
    pair = judged(base, cand)
    assert pair.verdict is Verdict.REGRESSION and pair.change == pytest.approx(0.10, abs=0.01)
    assert any(note.startswith("round 6 (B A, run r5) is an outlier: the candidate -4") for note in pair.notes)
    base, cand = gate_rounds(14)
    cand[4] /= 2
    pair = judged(base, cand)
    assert pair.verdict is Verdict.NOT_SLOWER and "round 5 (A B, run r4) is an outlier" in pair.notes[0]


def test_a_slowdown_between_zero_and_the_threshold_is_inconclusive_and_says_what_would_settle_it():
    base, cand = gate_rounds(14, slowdown=1.03, noise=0.03, seed=8)
    pair = judged(base, cand)
    assert pair.verdict is Verdict.INCONCLUSIVE
    settle = pair.notes[-1]
    assert settle.startswith("inconclusive: upper bound +") and "a slowdown of 5% is not ruled out" in settle
    assert "rounds would settle it at this noise (alpha 0.05)" in settle


def test_the_rounds_projection_is_enough_at_the_projected_count():
    """The projection for A/A at a per-pair noise of 3 %: at that many pairs the pass comes >= 90 % of the time."""
    needed = pairs_needed(0.03, math.log(1.05), alpha=0.05)
    values = np.random.default_rng(1).normal(0, 0.03, (400, needed))
    passed = wilcoxon(values - math.log(1.05), alternative="less", axis=-1).pvalue <= 0.05
    assert 5 <= needed <= 12 and passed.mean() >= 0.9
    fewer = wilcoxon(values[:, : needed // 2] - math.log(1.05), alternative="less", axis=-1).pvalue <= 0.05
    assert fewer.mean() < 0.9


@pytest.mark.parametrize("n", [1, 2, 4])
def test_too_few_rounds_are_inconclusive_with_the_rounds_that_can_reach_a_verdict(n):
    pair = judged([1000.0] * n, [700.0] * n)
    assert pair.verdict is Verdict.INCONCLUSIVE
    assert "can reach both" in pair.notes[-1] and "at least 10 rounds" in pair.notes[-1] or n == 1


def test_zero_variance_and_ties_are_verdicts_not_crashes():
    same = judged([1000.0] * 12, [1000.0] * 12)
    assert same.verdict is Verdict.NOT_SLOWER and same.change == 0 and same.p_value == pytest.approx(1 / 64)
    slower = judged([1000.0] * 12, [800.0, 800.0, 810.0, 810.0] * 3)
    assert slower.verdict is Verdict.REGRESSION


def test_zero_img_per_s_is_a_named_failure_not_a_crash():
    base, cand = rounds_of([1000.0] * 12, [1000.0] * 11 + [0.0], alternating(12))
    pair = judge("x", base, cand, Settings())
    assert pair.verdict is Verdict.NEW_FAILURE
    assert "candidate: no measurement in 1 of 12 repeats" in pair.notes[0]
    assert "candidate run r11 repeat 0: train_img_per_s = 0.0 is no measurement" in pair.notes[1]
    base, cand = rounds_of([1000.0] * 11 + [float("nan")], [1000.0] * 11 + [-1.0], alternating(12))
    both = judge("x", base, cand, Settings())
    assert both.verdict is Verdict.NOT_SLOWER and both.rounds == "11 rounds (5 pairs, 1 unpaired)"


def test_rounds_all_in_one_order_fall_back_to_the_rank_sum_test_and_say_so():
    base_speeds, cand_speeds = [1000, 1010, 990, 1005, 995, 1002], [880, 890, 870, 885, 875, 882]
    pair = judge("x", *rounds_of(base_speeds, cand_speeds, [True] * 6), Settings())
    assert pair.verdict is Verdict.REGRESSION and pair.rounds == "6 vs 6 repeats (6 rounds in one order)"
    assert pair.notes == ("the candidate ran second in all 6 rounds: an order effect is not ruled out",)


def test_several_repeats_of_a_side_in_a_round_enter_as_their_log_mean():
    base, cand = rounds_of([1000], [1000], [False], repeats=2)
    base[1] = replace(base[1], metrics={"train_img_per_s": 4000.0})  # geometric mean 2000
    cand[0] = replace(cand[0], metrics={"train_img_per_s": 2000.0})
    cand[1] = replace(cand[1], status=CellStatus.OOM)
    assert [(r.slower, r.candidate_second) for r in rounds(base, cand, "train_img_per_s")] == [
        (pytest.approx(0), False)
    ]


def test_a_round_missing_from_the_alternation_pairs_no_two_rounds_of_one_order():
    """A disturbed (or failed) cell leaves its round out: the rounds after it must still be paired
    A B with B A, or a pair's mean keeps the whole order effect."""
    base, cand = gate_rounds(16, order_effect=1.5)
    base_rows, cand_rows = rounds_of(base, cand, alternating(16))
    cand_rows = [row for row in cand_rows if row.run_id != "r1"]  # round 2 (B A) left out
    paired = rounds(base_rows, cand_rows, "train_img_per_s")
    laid = opposite_order_pairs(paired)
    assert [paired[i].run_id for i in laid[:4]] == ["r2", "r3", "r4", "r5"]
    assert all(paired[a].candidate_second != paired[b].candidate_second for a, b in zip(laid[::2], laid[1::2]))
    pair = judge("x", base_rows, cand_rows, Settings())
    assert pair.verdict is Verdict.NOT_SLOWER and pair.rounds == "15 rounds (7 pairs, 1 unpaired)"
