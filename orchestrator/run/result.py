"""Decide a cell's status and turn its result document (read by `workloads.result`) into metrics.

Status and measured values stay apart: `classify` looks only at how the container ended, and
`metrics_from` turns only numbers into metrics.
"""

from __future__ import annotations

import math
import signal
from pathlib import Path
from statistics import median
from typing import Optional, TypeGuard

from orchestrator.metrics import EPOCH_TIME, RESULT_METRICS, TIMING_SUSPECT, Metric, measured
from orchestrator.status import CellStatus
from workloads.contract import OOM_MARKER, WorkloadExit
from workloads.result import Document, OpsResult, ResultError, TrainWindow, read_result


def train_window(path: Path) -> Optional[TrainWindow]:
    """The result's timed training window, or None when the result or its window is missing (a failed cell)."""
    try:
        document = read_result(path)
    except ResultError:
        return None
    found = None if isinstance(document, OpsResult) else document.train_window
    return found if found is not None and 0 < found.start_unix <= found.end_unix else None


def classify(exit_code: Optional[int], timed_out: bool, oom_killed: bool, logs: str, result_ok: bool) -> CellStatus:
    if timed_out:
        return CellStatus.TIMEOUT
    if oom_killed or exit_code == WorkloadExit.OOM or OOM_MARKER in logs:
        return CellStatus.OOM
    if exit_code == 0 and result_ok:
        return CellStatus.OK
    return CellStatus.ERROR


def signal_note(exit_code: Optional[int]) -> Optional[str]:
    """Names the signal behind an exit code past 128 (the convention tini and shells follow), so a
    native crash reads as SIGABRT or SIGSEGV instead of a bare number."""
    if exit_code is None or not 128 < exit_code <= 128 + signal.NSIG:
        return None
    try:
        name = signal.Signals(exit_code - 128).name
    except ValueError:
        name = f"signal {exit_code - 128}"
    return f"exit code {exit_code}: the workload was ended by {name}"


def metrics_from(result: Document) -> list[Metric]:
    found = [
        Metric(info.name, float(value), info.unit)
        for info in RESULT_METRICS
        if _is_number(value := getattr(result, info.result_key, None))
    ]
    if isinstance(result, OpsResult):  # the `ops` benchmark carries its own metrics, one per operation and size
        return found + [metric for metric in result.metrics if _is_number(metric.value)]
    if result.epoch_seconds:
        found.append(measured(EPOCH_TIME, median(result.epoch_seconds)))
    found.append(measured(TIMING_SUSPECT, float(result.timing_suspect)))
    return found


def _is_number(value: object) -> TypeGuard[float]:
    """A finite number: a diverged loss (read back as NaN) or a missing value is no metric."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
