"""The node side of a Slurm cell: `python -m orchestrator run-cell JOB_FILE`.

The job file (written by `SlurmBackend` before `sbatch`) holds one `CellTask`; the node runs it
with `LocalBackend` on its own Docker engine — the very code a local run uses — and writes how it
ended (`CellRun`, with this node's host record) as `slurm-outcome.json` beside the cell's result and
log, where the submitting orchestrator reads it. The node's GPUs are known only here, so a GPU
image's CUDA limits are checked here. SIGTERM (scancel, the job's time limit) stops the container
cleanly first.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Optional

import docker
import docker.errors
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console

from orchestrator.backends import LOG_FILE, BackendError, BackendLost, CellRun, CellTask
from orchestrator.backends.engine import connect
from orchestrator.backends.hostinfo import host_info
from orchestrator.backends.local import LocalBackend
from orchestrator.bundle.files import write_stream
from orchestrator.errors import SpecError
from orchestrator.images.cuda import unsupported_gpus
from orchestrator.metrics import Metric
from orchestrator.run.interrupts import interrupt_guard
from orchestrator.run.plan import Cell
from orchestrator.run.scheduler import Placement, format_cpuset
from orchestrator.spec.catalog import load_catalog

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


def slurm_names(environ: Optional[dict[str, str]] = None) -> dict[str, Optional[str]]:
    """The names Slurm gives this node and job; what tells a node from its submit host when both
    are one machine (a test cluster, a login node that also runs jobs)."""
    env = os.environ if environ is None else environ
    return {"slurm_node": env.get("SLURMD_NODENAME"), "slurm_job_id": env.get("SLURM_JOB_ID")}


def node_host(client: docker.DockerClient) -> dict[str, Any]:
    """This node as the store records a cell's host: what a local run records of its host, and Slurm's names."""
    return {**host_info(client), **slurm_names()}


def cuda_refusal(task: CellTask, cuda: Optional[str], host: dict[str, Any]) -> Optional[str]:
    """Why the cell's CUDA build cannot run on the GPUs Slurm gave it on this node, or None."""
    if not cuda or not task.cell.gpus:
        return None
    given = set(task.placement.device_ids)
    gpus = [gpu for gpu in host.get("gpus") or [] if not given or gpu["index"] in given]
    problems = unsupported_gpus(cuda, gpus)
    if not problems:
        return None
    where = host.get("slurm_node") or host.get("hostname")
    return f"image {task.cell.image} cannot run on node {where}'s GPUs: {'; '.join(problems)}"


def image_cuda(tag: str) -> Optional[str]:
    """The CUDA version the catalog (of this checkout, shared with the submit host) names for an image."""
    return next((entry.cuda for entry in load_catalog().images if entry.tag == tag), None)


def write_outcome(
    task: CellTask, ended: Optional[CellRun], lost: Optional[str] = None, error: Optional[str] = None
) -> None:
    """`ended`, or why there is none: `lost` (the engine went away: retried) or `error` (the engine refused it)."""
    outcome = {
        "schema": OUTCOME_SCHEMA,
        "run_id": task.run_id,
        "config_hash": task.cell.config_hash,
        "repeat": task.cell.repeat,
        "image_id": task.image_id,
        "job_id": os.environ.get("SLURM_JOB_ID"),
        "node": socket.gethostname(),
        "lost": lost,
        "error": error,
        "ended": None if ended is None else {k: v for k, v in dataclasses.asdict(ended).items() if k != "logs"},
    }
    write_stream([json.dumps(outcome, indent=2).encode()], task.cell_dir / OUTCOME_FILE)


def read_outcome(task: CellTask, logs: str) -> Optional[dict]:
    """The node's outcome for exactly this task (None when the job wrote none): `lost`, `error` or a `CellRun`."""
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
    host = node_host(client)
    try:
        client.images.get(task.image_id)
        refusal = cuda_refusal(task, image_cuda(task.cell.image), host)
    except docker.errors.ImageNotFound:
        refusal = (
            f"image {task.image_id} ({task.cell.image}) is not on node {socket.gethostname()}: "
            "load it there with `python -m orchestrator bundle load BUNDLE`"
        )
    if refusal:
        refused = CellRun(exit_code=None, timed_out=False, oom_killed=False, logs=refusal, host=host)
        (task.cell_dir / LOG_FILE).write_text(refused.logs)
        write_outcome(task, refused)
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
        except BackendError as exc:  # stored as the cell's error, as for a local cell
            write_outcome(task, None, error=str(exc))
            console.print(f"{task.cell.label} on {socket.gethostname()}: {exc}")
            return
    write_outcome(task, dataclasses.replace(ended, host=host))
    console.print(f"{task.cell.label} on {socket.gethostname()}: exit {ended.exit_code}")
