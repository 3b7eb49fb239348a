"""Read a workload's result JSON (schema benchmatrix.result/1) and decide a cell's status.

Status and measured values stay apart: `classify` looks only at how the container ended, and
`metrics_from` turns only numbers into metrics.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Optional

from orchestrator.backends.monitor import TrainWindow
from orchestrator.metrics import EPOCH_TIME, RESULT_METRICS, TIMING_SUSPECT, Metric, measured
from orchestrator.status import CellStatus
from workloads.contract import EXIT_OOM, OOM_MARKER, RESULT_SCHEMA


class ResultError(ValueError):
    """The result file is missing, unreadable or of an unknown schema."""


@dataclass(frozen=True)
class Outcome:
    status: str
    notes: list[str]


def load_result(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ResultError(f"{path}: the workload wrote no result") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: unreadable result ({exc})") from exc
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
        raise ResultError(
            f"{path}: expected schema {RESULT_SCHEMA}, got {data.get('schema') if isinstance(data, dict) else data!r}"
        )
    return data


def train_window(path: Path) -> Optional[TrainWindow]:
    """The result's timed training window, or None when the result or its window is missing (a failed cell)."""
    try:
        window = load_result(path).get("train_window") or {}
        found = TrainWindow(float(window["start_unix"]), float(window["end_unix"]), int(window["samples"]))
    except (ResultError, KeyError, TypeError, ValueError):
        return None
    return found if 0 < found.start_unix <= found.end_unix else None


def classify(exit_code: Optional[int], timed_out: bool, oom_killed: bool, logs: str, result_ok: bool) -> CellStatus:
    if timed_out:
        return CellStatus.TIMEOUT
    if oom_killed or exit_code == EXIT_OOM or OOM_MARKER in logs:
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


def metrics_from(result: dict) -> list[Metric]:
    found = [
        Metric(info.name, float(result[info.result_key]), info.unit)
        for info in RESULT_METRICS
        if _is_number(result.get(info.result_key))
    ]
    epochs = [float(s) for s in result.get("epoch_seconds") or []]
    if epochs:
        found.append(measured(EPOCH_TIME, median(epochs)))
    if "timing_suspect" in result:
        found.append(measured(TIMING_SUSPECT, float(bool(result["timing_suspect"]))))
    # A result may carry its own named metrics (the `ops` benchmark: one per operation and size).
    found += [
        Metric(str(item["name"]), float(item["value"]), str(item["unit"]))
        for item in result.get("metrics") or []
        if isinstance(item, dict) and _is_number(item.get("value"))
    ]
    return found


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
