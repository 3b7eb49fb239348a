"""The node side of a Slurm cell: `python -m orchestrator run-cell JOB_FILE`.

The job file (written by `SlurmBackend` before `sbatch`) holds one `CellTask`; the node runs it
with `LocalBackend` on its own Docker engine — the very code a local run uses — and writes how it
ended (`CellRun`) as `slurm-outcome.json` beside the cell's result and log, where the submitting
orchestrator reads it. SIGTERM (scancel, the job's time limit) stops the container cleanly first.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Optional

import docker.errors
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console

from orchestrator.backends import LOG_FILE, BackendLost, CellRun, CellTask
from orchestrator.backends.engine import connect
from orchestrator.backends.local import LocalBackend
from orchestrator.bundle.files import write_stream
from orchestrator.errors import SpecError
from orchestrator.metrics import Metric
from orchestrator.run.interrupts import interrupt_guard
from orchestrator.run.plan import Cell
from orchestrator.run.scheduler import Placement, format_cpuset

JOB_FILE = "slurm-job.json"
OUTCOME_FILE = "slurm-outcome.json"
JOB_SCHEMA = "benchmatrix.slurm-job/1"
OUTCOME_SCHEMA = "benchmatrix.slurm-outcome/1"
POLL_S = 0.5


class JobFile(BaseModel):
    """What a node needs to run one cell exactly as the submitting orchestrator planned it."""

    model_config = ConfigDict(extra="forbid")

    schema_: str = Field(alias="schema", pattern=f"^{JOB_SCHEMA}$")
    run_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    cell: dict[str, Any]
    config_hash: str = Field(pattern=r"^[0-9a-f]{16}$")
    image_id: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    cell_dir: str
    data_dir: str
    timeout_s: float = Field(gt=0)
    sample_hz: float = Field(ge=0, le=100)


def write_job_file(task: CellTask, data_dir: Path, sample_hz: float) -> Path:
    cell = dataclasses.asdict(task.cell)
    job = {
        "schema": JOB_SCHEMA,
        "run_id": task.run_id,
        "cell": cell,
        "config_hash": task.cell.config_hash,
        "image_id": task.image_id,
        "cell_dir": str(task.cell_dir.resolve()),
        "data_dir": str(data_dir.resolve()),
        "timeout_s": task.timeout_s,
        "sample_hz": sample_hz,
    }
    path = task.cell_dir / JOB_FILE
    write_stream([json.dumps(job, indent=2).encode()], path)
    return path


def read_job_file(path: Path) -> tuple[CellTask, Path, float]:
    """The task, data directory and sampling rate; a bad file names itself, the key and the problem."""
    try:
        job = JobFile.model_validate_json(path.read_text())
    except OSError as exc:
        raise SpecError(str(path), "", f"cannot read the job file ({exc.strerror})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SpecError(str(path), ".".join(str(p) for p in first["loc"]), first["msg"]) from exc
    try:
        cell = Cell(**{key: _tuples(value) for key, value in job.cell.items()})
    except TypeError as exc:
        raise SpecError(str(path), "cell", f"not a cell of this benchmatrix version ({exc})") from exc
    if cell.config_hash != job.config_hash:
        raise SpecError(str(path), "config_hash", f"the cell hashes to {cell.config_hash}, not {job.config_hash}")
    task = CellTask(
        run_id=job.run_id,
        cell=cell,
        image_id=job.image_id,
        cell_dir=Path(job.cell_dir),
        placement=node_placement(cell),
        timeout_s=job.timeout_s,
    )
    return task, Path(job.data_dir), job.sample_hz


def _tuples(value: Any) -> Any:
    """JSON lists back into the tuples a (frozen, hashed) Cell holds: options, device ids, plugins."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def node_placement(cell: Cell, environ: Optional[dict[str, str]] = None) -> Placement:
    """Where Slurm put the job: its GPUs (host indices) and, when Slurm binds tasks, its CPUs."""
    env = os.environ if environ is None else environ
    gpus = env.get("SLURM_JOB_GPUS") or env.get("SLURM_STEP_GPUS") or ""
    device_ids = tuple(int(index) for index in gpus.split(",") if index.strip().isdigit()) if cell.gpus else ()
    allowed = os.sched_getaffinity(0)
    cpuset = format_cpuset(tuple(allowed)) if len(allowed) < (os.cpu_count() or len(allowed)) else None
    return Placement(device_ids=device_ids, cpuset=cpuset)


def write_outcome(task: CellTask, ended: Optional[CellRun], lost: Optional[str] = None) -> None:
    outcome = {
        "schema": OUTCOME_SCHEMA,
        "run_id": task.run_id,
        "config_hash": task.cell.config_hash,
        "repeat": task.cell.repeat,
        "image_id": task.image_id,
        "job_id": os.environ.get("SLURM_JOB_ID"),
        "node": socket.gethostname(),
        "lost": lost,
        "ended": None if ended is None else {k: v for k, v in dataclasses.asdict(ended).items() if k != "logs"},
    }
    write_stream([json.dumps(outcome, indent=2).encode()], task.cell_dir / OUTCOME_FILE)


def read_outcome(task: CellTask, logs: str) -> Optional[dict]:
    """The node's outcome for exactly this task (None when the job wrote none): `lost` or a `CellRun`."""
    try:
        outcome = json.loads((task.cell_dir / OUTCOME_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    same_task = (outcome.get("run_id"), outcome.get("config_hash"), outcome.get("repeat"), outcome.get("image_id"))
    if outcome.get("schema") != OUTCOME_SCHEMA or same_task != (
        task.run_id,
        task.cell.config_hash,
        task.cell.repeat,
        task.image_id,
    ):
        return None
    ended = outcome.get("ended")
    if ended is not None:
        ended = dict(ended)
        try:
            ended["metrics"] = tuple(Metric(**metric) for metric in ended.get("metrics") or ())
            ended["notes"] = tuple(ended.get("notes") or ())
            outcome["ended"] = CellRun(logs=logs, **ended)
        except TypeError:  # written by another benchmatrix version: the job's state decides instead
            return None
    return outcome


def run_cell_file(path: Path, console: Console) -> None:
    """Run the job file's cell on this node's engine and write its outcome; SIGTERM stops it cleanly."""
    task, data_dir, sample_hz = read_job_file(path)
    client = connect()
    try:
        client.images.get(task.image_id)
    except docker.errors.ImageNotFound:
        missing = CellRun(
            exit_code=None,
            timed_out=False,
            oom_killed=False,
            logs=f"image {task.image_id} ({task.cell.image}) is not on node {socket.gethostname()}: "
            "load it there with `python -m orchestrator bundle load BUNDLE`",
        )
        (task.cell_dir / LOG_FILE).write_text(missing.logs)
        write_outcome(task, missing)
        return
    backend = LocalBackend(client, data_dir, sample_hz)
    with interrupt_guard() as guard, ThreadPoolExecutor(max_workers=1) as pool:
        guard.deferred = True
        future = pool.submit(backend.run_cell, task)
        cancelled = False
        while not wait([future], timeout=POLL_S).done:
            if guard.requested and not cancelled:
                backend.cancel()
                cancelled = True
        try:
            ended = future.result()
        except BackendLost as exc:  # the submitting runner retries the cell once, as for a local cell
            write_outcome(task, None, lost=str(exc))
            console.print(f"{task.cell.label} on {socket.gethostname()}: {exc}")
            return
    write_outcome(task, ended)
    console.print(f"{task.cell.label} on {socket.gethostname()}: exit {ended.exit_code}")
