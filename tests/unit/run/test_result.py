"""A cell's status comes from how its container ended; metrics only from measured numbers."""

from __future__ import annotations

import math

import pytest

from orchestrator.run.result import classify, metrics_from, signal_note
from tests.results import result
from workloads.result import Metric, OpsResult, Warmup


@pytest.mark.parametrize(
    "exit_code, timed_out, oom_killed, logs, result_ok, expected",
    [
        (0, False, False, "", True, "ok"),
        (0, False, False, "", False, "error"),
        (20, False, False, "Traceback", False, "error"),
        (137, False, True, "", False, "oom"),
        (22, False, False, "", False, "oom"),
        (20, False, False, "BENCHMATRIX_OOM out of memory", False, "oom"),
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


def test_metrics_only_from_finite_numbers():
    measured = result(train_img_per_s=1234.5, params=101770, final_loss=math.nan, epoch_seconds=[2.0, 4.0, 3.0])
    found = {m.name: (m.value, m.unit) for m in metrics_from(measured)}
    assert found["train_img_per_s"] == (1234.5, "img/s") and found["params"] == (101770.0, "count")
    assert found["epoch_seconds_median"] == (3.0, "s") and found["timing_suspect"] == (0.0, "flag")
    assert "final_loss" not in found and "test_accuracy" not in found  # diverged, and no test split


def test_new_keys_become_metrics():
    found = {
        (m.name, m.value, m.unit)
        for m in metrics_from(
            result(validation_accuracy=0.9, inference_latency_p50_ms=1.5, inference_latency_p99_ms=2.5)
        )
    }
    assert {("validation_accuracy", 0.9, "1"), ("inference_latency_p50_ms", 1.5, "ms")} <= found
    assert ("inference_latency_p99_ms", 2.5, "ms") in found
    assert not any(name == "peak_device_memory_mb" for name, _, _ in found)


def test_an_ops_result_lists_its_own_metrics():
    ops = OpsResult(
        framework="jax", versions={}, model="ops", dataset="none", device="cpu", options={},
        warmup=Warmup("calls", 3, "n"), sizes=[64], repeats=3, peak_rss_mb=10.0,
        metrics=[Metric("op_gemm_n64", 1e-5, "s"), Metric("op_bad_n64", math.inf, "s")],
    )  # fmt: skip
    found = {(m.name, m.value, m.unit) for m in metrics_from(ops)}
    assert found == {("op_gemm_n64", 1e-5, "s"), ("peak_rss_mb", 10.0, "MB")}
