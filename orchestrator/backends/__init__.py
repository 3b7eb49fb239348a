"""Backends run one cell and say how it ended. Cells, the store and reports never know which ran it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

from orchestrator.plan import Cell

CONTAINER_DATA = "/data"
CONTAINER_RESULTS = "/results"
CONTAINER_CODE = "/opt/benchmatrix"
RESULT_FILE = "result.json"
LOG_FILE = "log.txt"


@dataclass(frozen=True)
class CellRun:
    """What a backend reports; the result JSON and the log are files in `cell_dir`."""

    exit_code: Optional[int]
    timed_out: bool
    oom_killed: bool
    logs: str


class Backend(Protocol):
    name: str

    def run_cell(self, cell: Cell, image_id: str, cell_dir: Path) -> CellRun: ...


def workload_command(cell: Cell) -> list[str]:
    """The in-container command line; every value comes from a validated spec or the catalog."""
    command = [
        "python3",
        "-m",
        "workloads",
        "run",
        "--framework",
        cell.framework,
        "--model",
        cell.model,
        "--dataset",
        cell.dataset,
        "--data-dir",
        f"{CONTAINER_DATA}/{cell.dataset}",
        "--batch-size",
        str(cell.batch_size),
        "--epochs",
        str(cell.epochs),
        "--optimizer",
        cell.optimizer,
        "--lr",
        repr(cell.lr),
        "--warmup-steps",
        str(cell.warmup_steps),
        "--seed",
        str(cell.repeat),
        "--out",
        f"{CONTAINER_RESULTS}/{RESULT_FILE}",
    ]
    if cell.max_samples is not None:
        command += ["--max-samples", str(cell.max_samples)]
    for key, value in cell.options:
        command += ["--option", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    return command
