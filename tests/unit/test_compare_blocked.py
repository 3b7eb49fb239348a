"""The blocked (paired) test of `compare.judge` on constructed rounds: an order effect is taken out
of the change, a real slowdown is still found, and pairs without rounds in both orders keep the
rank test."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.compare import Settings, Verdict, judge, rounds
from tests.unit.test_compare import cell

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
                rows.append(dict(row, run_id=f"r{index}", id=100 * index + 10 * position + repeat))
    return base, cand


def alternating(n: int) -> list[bool]:
    """A B, B A, …: the candidate runs second in rounds 0, 2, 4, …"""
    return [index % 2 == 0 for index in range(n)]


def with_order_effect(
    n: int, slowdown: float = 1.0, order_effect: float = ORDER_EFFECT, noise: float = 0.005, seed: int = 3
) -> tuple[list[dict], list[dict]]:
    """`n` alternating rounds sharing a drifting machine state; the second runner loses `order_effect`."""
    rng = np.random.default_rng(seed)
    state = 1000 * np.exp(rng.normal(0, 0.05, n))  # drift between rounds, shared by both sides of a round
    base = state * np.exp(rng.normal(0, noise, n))
    cand = state * np.exp(rng.normal(0, noise, n)) / slowdown
    second = alternating(n)
    base = [b / order_effect if not s else b for b, s in zip(base, second)]
    cand = [c / order_effect if s else c for c, s in zip(cand, second)]
    return rounds_of(base, cand, second)


def test_a_pure_order_effect_is_no_regression():
    pair = judge("x", *with_order_effect(10), Settings())
    assert pair.verdict is Verdict.NO_CHANGE and not pair.underpowered
    assert pair.change == pytest.approx(0, abs=0.01)
    assert pair.notes[0] == "order-corrected change over 10 rounds in both orders (blocked t-test, df=8)"
    assert pair.notes[1].startswith("order effect: the candidate fared 9.") and "worse running second" in pair.notes[1]


def test_a_real_slowdown_with_an_order_effect_is_a_regression_of_its_own_size():
    pair = judge("x", *with_order_effect(10, slowdown=1 / 0.9), Settings())
    assert pair.verdict is Verdict.REGRESSION and pair.p_value < 1e-6
    assert pair.change == pytest.approx(-0.10, abs=0.01)


def test_a_slowdown_only_when_second_is_half_a_slowdown_on_average():
    """The candidate alone losing 5 % when second is a 2.5 % slowdown averaged over the orders: not
    separable from a build change, so the blocked test calls it significant but below the threshold."""
    second = alternating(10)
    base, cand = rounds_of([1000] * 10, [1000 / ORDER_EFFECT if s else 1000 for s in second], second)
    pair = judge("x", base, cand, Settings())
    assert pair.verdict is Verdict.NO_CHANGE and pair.change == pytest.approx(-0.024, abs=0.001)
    assert "slower by 2.4%: significant, but below the 5% threshold" in pair.notes


def test_rounds_all_in_one_order_fall_back_to_the_rank_test_and_say_so():
    base_speeds, cand_speeds = [1000, 1010, 990, 1005, 995], [940, 950, 930, 945, 935]
    base, cand = rounds_of(base_speeds, cand_speeds, [True] * 5)
    pair = judge("x", base, cand, Settings())
    assert pair.verdict is Verdict.REGRESSION and pair.p_value == pytest.approx(p_lower(base_speeds, cand_speeds))
    assert pair.change == pytest.approx(940 / 1000 - 1)
    assert pair.notes == ("the candidate ran second in all 5 rounds: an order effect is not ruled out",)


def test_fewer_than_three_rounds_keep_the_rank_test():
    base, cand = rounds_of([1000, 1010], [915, 924], [True, False])
    pair = judge("x", base, cand, Settings())
    assert pair.verdict is Verdict.INCONCLUSIVE and pair.p_value is None
    assert pair.notes[0].startswith(
        "too few repeats for a verdict (2 vs 2 ok, 2 rounds: a blocked test needs 3 in both orders): the rank test"
    )
    base, cand = rounds_of([1000, 1010], [880, 890], [True, False], repeats=3)
    three_each = judge("x", base, cand, Settings())
    assert three_each.verdict is Verdict.REGRESSION and not any("order-corrected" in n for n in three_each.notes)


def test_too_few_repeats_only_when_no_blocked_test_applies():
    """At alpha/3 (three looks) 3 vs 3 repeats cannot reach alpha with ranks, but 3 rounds in both
    orders can with the blocked test: a verdict, not "too few repeats"."""
    settings = Settings(looks=3)
    base, cand = rounds_of([1000, 1100, 950], [800, 885, 757], [True, False, True])
    pair = judge("x", base, cand, settings)
    assert pair.verdict is Verdict.REGRESSION and pair.p_value <= settings.test_alpha
    one_order = judge("x", *rounds_of([1000, 1100, 950], [800, 885, 757], [True] * 3), settings)
    assert (
        one_order.verdict is Verdict.INCONCLUSIVE and "3 rounds: a blocked test needs 3 in both" in one_order.notes[1]
    )


def test_few_noisy_rounds_are_underpowered():
    base, cand = rounds_of([1000, 1000, 1000], [1000, 900, 1100], [True, False, True])
    pair = judge("x", base, cand, Settings())
    assert pair.verdict is Verdict.NO_CHANGE and pair.underpowered
    assert pair.notes[-1].startswith("underpowered: with 3 rounds (per-round noise ")


def test_lower_is_better_metrics_are_oriented():
    base, cand = rounds_of([10.0, 10.1, 9.9, 10.0], [11.0, 11.1, 10.9, 11.0], alternating(4))
    for row in base + cand:
        row["metrics"] = {"epoch_seconds_median": row["metrics"]["train_img_per_s"]}
    pair = judge("x", base, cand, Settings(metric="epoch_seconds_median"))
    assert pair.verdict is Verdict.REGRESSION and pair.change == pytest.approx(0.10, abs=0.002)


def test_several_repeats_of_a_side_in_a_round_enter_as_their_log_mean():
    base, cand = rounds_of([1000], [1000], [False], repeats=2)
    base[1]["metrics"] = {"train_img_per_s": 4000.0}  # geometric mean 2000
    cand[0]["metrics"] = {"train_img_per_s": 2000.0}
    cand[1]["status"] = "oom"
    assert [(r.log_ratio, r.candidate_second) for r in rounds(base, cand, "train_img_per_s")] == [
        (pytest.approx(0), False)
    ]


def test_the_fit_matches_scipy_regression():
    rng = np.random.default_rng(7)
    order = np.array(alternating(9))
    log_ratios = -0.03 + 0.02 * np.where(order, 1, -1) + rng.normal(0, 0.01, 9)
    fit = blocked_fit(list(log_ratios), list(order))
    reference = linregress(np.where(order, 1.0, -1.0), log_ratios)
    assert (fit.delta, fit.omega) == (pytest.approx(reference.intercept), pytest.approx(reference.slope))
    assert fit.delta_se == pytest.approx(reference.intercept_stderr)
    assert fit.p_order() == pytest.approx(reference.pvalue)


def test_sequential_blocked_false_alarms_stay_below_alpha():
    """A/A rounds with drift and a 5 % order effect, looked at after 2, 4 and 8 rounds at alpha/3."""
    settings, planned, trials = Settings(looks=3), (2, 4, 8), 300
    alarms = 0
    for trial in range(trials):
        base, cand = with_order_effect(planned[-1], noise=0.05, seed=trial)
        for n in planned:
            pair = judge("x", base[:n], cand[:n], settings)
            if pair.settled:
                break
        alarms += pair.verdict is Verdict.REGRESSION
    assert alarms / trials <= settings.alpha
