"""Backends run one cell and say how it ended. Cells, the store and reports never know which ran it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Optional, Protocol

from orchestrator.metrics import Metric
from orchestrator.run.plan import Cell
from orchestrator.run.scheduler import Placement
from workloads.contract import RunArgs
from workloads.frameworks import option_text
from workloads.ops import OPS_MODEL

CONTAINER_DATA = "/data"
CONTAINER_RESULTS = "/results"
CONTAINER_CODE = "/opt/benchmatrix"
CONTAINER_PLUGINS = f"{CONTAINER_CODE}/plugins"
RESULT_FILE = "result.json"
LOG_FILE = "log.txt"
LOG_TAIL_CHARS = 4000  # the end of a cell's log a backend reads back and the store keeps of a failed cell


@dataclass(frozen=True)
class CellTask:
    """One cell to run: where (placement), how long (timeout) and where its files go (cell_dir)."""

    run_id: str
    cell: Cell
    image_id: str
    cell_dir: Path
    placement: Placement
    timeout_s: float


@dataclass(frozen=True)
class CellRun:
    """What a backend reports; the result JSON and the log are files in the task's `cell_dir`."""

    exit_code: Optional[int]
    timed_out: bool
    oom_killed: bool
    logs: str
    interrupted: bool = False  # stopped by `cancel`
    metrics: tuple[Metric, ...] = ()  # what the backend measured from outside (monitoring)
    notes: tuple[str, ...] = ()
    # The machine that ran the cell, as `hostinfo.host_info` describes it (a Slurm cell: its node, seen there).
    host: Optional[dict[str, Any]] = None


class BackendLost(Exception):
    """The backend lost what runs cells (the engine restarted, the controller went away) mid-cell.

    The cell's outcome is unknown, not failed: the runner records it retryable and retries once.
    """


class BackendError(Exception):
    """What runs cells answered, and refused this cell (no GPU runtime for its devices, a folder it
    cannot write): the cell is stored as an error and the matrix goes on. Each backend turns its
    engine's own errors (Docker's, Slurm's, the file system's) into this or `BackendLost`."""


@dataclass(frozen=True)
class Reaped:
    """Something a killed orchestrator left behind, now removed."""

    run_id: str
    description: str


class BackendName(StrEnum):
    """The backends `run --backend` offers; `orchestrator.backends.registry` builds each."""

    LOCAL = "local"  # this host's Docker engine
    SLURM = "slurm"  # one sbatch job per cell, run on its node's engine


class Backend(Protocol):
    """What every backend implements; `orchestrator.backends.registry` names them and builds them."""

    name: BackendName

    def run_cell(self, task: CellTask) -> CellRun:
        """Run one cell to its end; raise BackendLost when contact is lost, BackendError when the cell is
        refused — never the engine's own exceptions. Called from worker threads."""
        ...

    def cancel(self) -> None:
        """Stop every running cell (grace period, then kill) and start no more; any thread may call it."""
        ...

    def reap_orphans(self) -> list[Reaped]:
        """Remove cells left behind by a killed orchestrator (found by label), and say what went."""
        ...


def workload_command(cell: Cell) -> list[str]:
    """The in-container command line; every value comes from a validated spec or the catalog."""
    args = RunArgs(
        cell.training,
        out=Path(CONTAINER_RESULTS) / RESULT_FILE,
        data_dir=Path(CONTAINER_DATA) / cell.dataset,
        seed=cell.repeat,
        # Data-parallel over the cell's GPUs (the batch is per GPU); the ops benchmark uses one device.
        replicas=cell.gpus if cell.gpus > 1 and cell.model != OPS_MODEL else 1,
        options=tuple((key, option_text(value)) for key, value in cell.options),
        plugin_dirs=tuple(Path(target) for _, target in plugin_mounts(cell)),
    )
    return ["python3", "-m", "workloads", *args.argv()]


def plugin_mounts(cell: Cell) -> list[tuple[Path, str]]:
    """(host folder, container folder) of each model plugin folder; backends mount them read-only."""
    return [(Path(folder), f"{CONTAINER_PLUGINS}/{index}") for index, folder in enumerate(cell.plugins)]
