"""A cell's status comes from how its container ended; metrics only from measured numbers."""

from __future__ import annotations

import json

import pytest

from orchestrator.run.result import ResultError, classify, load_result, metrics_from, signal_note


@pytest.mark.parametrize(
    "exit_code, timed_out, oom_killed, logs, result_ok, expected",
    [
        (0, False, False, "", True, "ok"),
        (0, False, False, "", False, "error"),
        (1, False, False, "Traceback", False, "error"),
        (137, False, True, "", False, "oom"),
        (3, False, False, "BENCHMATRIX_OOM out of memory", False, "oom"),
        (137, True, False, "", False, "timeout"),
    ],
)
def test_classify(exit_code, timed_out, oom_killed, logs, result_ok, expected):
    assert classify(exit_code, timed_out, oom_killed, logs, result_ok) == expected


@pytest.mark.parametrize(
    "exit_code, expected",
    [
        (134, "exit code 134: the workload was ended by SIGABRT"),
        (139, "exit code 139: the workload was ended by SIGSEGV"),
        (137, "exit code 137: the workload was ended by SIGKILL"),
        (255, None),
        (1, None),
        (128, None),
        (None, None),
    ],
)
def test_signal_note_names_the_signal_behind_an_exit_code(exit_code, expected):
    assert signal_note(exit_code) == expected


def test_metrics_only_from_numbers():
    result = {
        "train_img_per_s": 1234.5,
        "params": 101770,
        "test_accuracy": None,
        "final_loss": "nan?",
        "epoch_seconds": [2.0, 4.0, 3.0],
    }
    found = {m.name: (m.value, m.unit) for m in metrics_from(result)}
    assert found == {
        "train_img_per_s": (1234.5, "img/s"),
        "params": (101770.0, "count"),
        "epoch_seconds_median": (3.0, "s"),
    }


def test_load_result_checks_schema(tmp_path):
    path = tmp_path / "r.json"
    with pytest.raises(ResultError, match="wrote no result"):
        load_result(path)
    path.write_text(json.dumps({"schema": "other/9"}))
    with pytest.raises(ResultError, match="expected schema benchmatrix.result/1"):
        load_result(path)
    path.write_text("{broken")
    with pytest.raises(ResultError, match="unreadable"):
        load_result(path)
