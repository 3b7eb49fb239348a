"""The gate's guarantees as seeded simulations (`bench/detector.py`'s vectorised gate over the
product's own functions), at trial counts small enough for the unit suite."""

from __future__ import annotations

import math

import pytest

from bench.detector import normal_noise, simulate
from orchestrator.analysis.compare import Settings

SEQUENTIAL = (14, 20)  # regress's defaults: --repeats 14 --max-repeats 20
TRIALS = 400
ALPHA = Settings().alpha


def within_alpha(rate: float, count: int) -> bool:
    """At most alpha up to three standard errors of a rate over `count` pairs or gates (the exact
    level at 12 rounds is 4.7 %, so a finite sample may land a little above 5 %)."""
    return rate <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / count)


def rates(cv, design, slowdown, condition="clean", trials=TRIALS):
    return simulate(normal_noise(cv), design, slowdown, condition, trials, pairs=2, settings=Settings(), seed=11)


@pytest.mark.parametrize("design", [(10,), (12,), (16,), (20,), SEQUENTIAL])
@pytest.mark.parametrize("condition", ["clean", "stall: baseline"])
def test_a_slowdown_at_the_threshold_passes_at_most_alpha(design, condition):
    assert within_alpha(rates(0.05, design, 0.05, condition, trials=2000).passed, 2 * 2000)


@pytest.mark.parametrize("condition", ["clean", "order effect", "stall: candidate"])
def test_a_a_gates_call_a_regression_at_most_alpha_family_wise(condition):
    assert within_alpha(rates(0.05, SEQUENTIAL, 0.0, condition).gate_regression, TRIALS)


def test_the_sequential_gate_finds_ten_percent_and_passes_a_a_and_a_stall_moves_neither():
    """A stall costs about 4 points of A/A passes at CV 5 % (20,000 gates: 81.5 -> 77.6 %), so the
    comparison uses 2,000 gates."""
    clean, slower = rates(0.05, SEQUENTIAL, 0.0, trials=2000), rates(0.05, SEQUENTIAL, 0.10, trials=2000)
    assert slower.regression >= 0.95 and clean.passed >= 0.75
    assert rates(0.01, SEQUENTIAL, 0.0).passed >= 0.95
    for stall in ("stall: baseline", "stall: candidate"):
        assert abs(rates(0.05, SEQUENTIAL, 0.10, stall, trials=2000).regression - slower.regression) <= 0.05
        assert abs(rates(0.05, SEQUENTIAL, 0.0, stall, trials=2000).passed - clean.passed) <= 0.05


def test_an_order_effect_changes_nothing_and_clear_passes_stop_at_the_first_look():
    assert rates(0.05, SEQUENTIAL, 0.10, "order effect") == rates(0.05, SEQUENTIAL, 0.10)
    # at 14 of 20 rounds a pass (level 0.0172) is reachable with 7 pairs, a regression (0.0043) is not
    assert rates(0.01, SEQUENTIAL, 0.0).median_rounds == 14 and rates(0.01, SEQUENTIAL, 0.20).median_rounds == 20


def test_fewer_rounds_than_the_signed_rank_test_can_use_stay_inconclusive():
    assert rates(0.01, (8,), 0.20).inconclusive == 1.0
