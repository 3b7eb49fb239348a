"""Repeat and series statistics, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from orchestrator.analysis.summary import repeat_groups, summarize_repeats, summarize_series
from tests.stores import row as stored_row


def test_repeat_summary_median_iqr_cv():
    summary = summarize_repeats([100.0, 110.0, 90.0, 105.0, 95.0])
    assert summary.n == 5 and summary.median == 100.0
    # sorted 90 95 100 105 110: 25th = 95, 75th = 105 (linear interpolation at ranks 1 and 3)
    assert summary.iqr == pytest.approx(10.0)
    # sample sd = sqrt(250 / 4) = 7.9057; mean 100
    assert summary.cv == pytest.approx(math.sqrt(62.5) / 100)


def test_repeat_summary_interpolates_between_order_statistics():
    summary = summarize_repeats([1.0, 2.0, 3.0, 4.0])
    assert summary.median == 2.5
    assert summary.iqr == pytest.approx(3.25 - 1.75)


def test_one_repeat_has_no_spread():
    summary = summarize_repeats([42.0])
    assert (summary.median, summary.iqr, summary.cv) == (42.0, 0.0, None)


def test_series_mean_p95_max():
    summary = summarize_series([float(v) for v in range(101)])  # 0..100
    assert (summary.mean, summary.p95, summary.max) == (50.0, 95.0, 100.0)
    assert summarize_series([7.0]).p95 == 7.0


def test_empty_input_is_an_error_not_a_zero():
    with pytest.raises(ValueError):
        summarize_repeats([])
    with pytest.raises(ValueError):
        summarize_series([])


def row(config_hash, status, speed, repeat):
    return stored_row(
        config_hash=config_hash,
        status=status,
        metrics={"train_img_per_s": speed} if speed is not None else {},
        version="1.9.1",  # cpu/mxnet/mlp/bs32 the placeholders' (tests/stores.py)
        options={"hybridize": True},
        repeat=repeat,
    )


def test_repeat_groups_summarise_ok_repeats_per_configuration():
    rows = [row("a", "ok", 100.0, 0), row("a", "ok", 120.0, 1), row("a", "timeout", None, 2), row("b", "oom", None, 0)]
    groups = repeat_groups(rows, "train_img_per_s")
    assert [(g["ok"], g["repeats"]) for g in groups] == [(2, 3), (0, 1)]
    assert groups[0]["summary"].median == 110.0 and groups[0]["options"] == "hybridize=True"
    assert groups[1]["summary"] is None
