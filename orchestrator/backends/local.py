"""Run a cell in a hardened container on this host's Docker engine."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any, Optional

import docker
import docker.errors
import requests.exceptions

from orchestrator.backends import (
    CONTAINER_CODE,
    CONTAINER_DATA,
    CONTAINER_RESULTS,
    LOG_FILE,
    RESULT_FILE,
    BackendError,
    BackendLost,
    BackendName,
    CellRun,
    CellTask,
    Reaped,
    plugin_mounts,
    workload_command,
)
from orchestrator.backends.engine import (
    CELL_LABEL,
    RUN_LABEL,
    CellContainer,
    ContainerSpec,
    Mount,
    find_orphans,
    writable_by_cell,
)
from orchestrator.backends.hostinfo import host_info
from orchestrator.backends.monitor import CONTAINER_SERIES, GPU_SERIES, CellMonitor, host_gpu_ids
from orchestrator.errors import UsageError
from orchestrator.run.devices import device_request
from orchestrator.run.plan import Cell
from orchestrator.run.result import train_window
from orchestrator.run.scheduler import Resources, parse_cpuset

WORKLOADS_DIR = Path(__file__).resolve().parent.parent.parent / "workloads"
MONITORING_OFF = "monitoring off (--sample-hz 0): no monitoring figures, no interference check"
# After losing the engine, how long the next cell waits for it to answer again (a restart).
ENGINE_WAIT_S = 120


class LocalBackend:
    name = BackendName.LOCAL

    def __init__(self, client: docker.DockerClient, data_dir: Path, sample_hz: float = 1.0) -> None:
        self.client = client
        self.data_dir = data_dir
        self.sample_hz = sample_hz
        self._lock = threading.Lock()
        self._running: set[CellContainer] = set()
        self._cancelled = False
        self._lost = False
        self._host: Optional[dict[str, Any]] = None

    def run_cell(self, task: CellTask) -> CellRun:
        """Docker's and the file system's errors become the interface's: an engine that no longer answers
        is lost (the cell is retried); one that answers but refuses the cell (`APIError`, also a requests
        error) and a folder the cell cannot have are the cell's error."""
        try:
            return self._run(task)
        except docker.errors.APIError as exc:
            if not self._engine_answers():
                self._lost = True
                raise BackendLost(f"lost the Docker engine during {task.cell.label}: {exc}") from exc
            raise BackendError(f"the Docker engine refused {task.cell.label}: {exc}") from exc
        except requests.exceptions.RequestException as exc:
            self._lost = True
            raise BackendLost(f"lost the Docker engine during {task.cell.label}: {exc}") from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise BackendError(f"{task.cell.label}: {exc}") from exc

    def host(self) -> dict[str, Any]:
        """This host as the store records it (asked once: the machine does not change within a run)."""
        if self._host is None:
            self._host = host_info(self.client)
        return self._host

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            running = list(self._running)
        for container in running:
            with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                container.stop()

    def reap_orphans(self) -> list[Reaped]:
        reaped = []
        for orphan in find_orphans(self.client):
            with contextlib.suppress(docker.errors.NotFound):
                self.client.containers.get(orphan.container_id).remove(force=True)
            reaped.append(
                Reaped(
                    orphan.run_id,
                    f"removed orphan container {orphan.container_id[:12]} ({orphan.state}) of run {orphan.run_id}, "
                    f"cell {orphan.cell}: its orchestrator ({orphan.owner}) is gone",
                )
            )
        return reaped

    def _run(self, task: CellTask) -> CellRun:
        if self._lost:
            self._wait_for_engine()
        cell_dir = task.cell_dir
        self._remove_earlier_attempts(task)
        writable_by_cell(cell_dir)
        for stale in (RESULT_FILE, LOG_FILE, GPU_SERIES, CONTAINER_SERIES):
            (cell_dir / stale).unlink(missing_ok=True)
        devices = task.placement.device_ids
        spec = cell_container_spec(task, self.data_dir)
        with CellContainer(self.client, spec) as container:
            with self._lock:
                if self._cancelled:
                    return CellRun(exit_code=None, timed_out=False, oom_killed=False, logs="", interrupted=True)
                container.start()
                self._running.add(container)
            cpus = parse_cpuset(task.placement.cpuset) if task.placement.cpuset else ()
            monitor = (
                CellMonitor(container.container, devices, self.sample_hz, cell_dir, cpus=cpus)
                if self.sample_hz
                else None
            )
            try:
                with monitor or contextlib.nullcontext():
                    ended = container.wait(task.timeout_s)
            finally:
                with self._lock:
                    self._running.discard(container)
        (cell_dir / LOG_FILE).write_text(ended.logs)
        metrics = monitor.metrics(train_window(cell_dir / RESULT_FILE)) if monitor else []
        monitored = monitor.notes if monitor else [MONITORING_OFF]
        return CellRun(
            exit_code=ended.exit_code,
            timed_out=ended.timed_out,
            oom_killed=ended.oom_killed,
            logs=ended.logs,
            interrupted=self._cancelled and ended.exit_code != 0,
            metrics=tuple(metrics),
            # The backend says who killed a cell: here the cell's own timeout, under Slurm its time limit.
            notes=(*monitored, *((f"killed after {task.timeout_s:g} s",) if ended.timed_out else ())),
            host=self.host(),
        )

    def _engine_answers(self) -> bool:
        try:
            self.client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False
        return True

    def _wait_for_engine(self) -> None:
        deadline = time.monotonic() + ENGINE_WAIT_S
        while True:
            try:
                self.client.ping()
            except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
                if time.monotonic() > deadline:
                    raise BackendLost(f"the Docker engine did not come back within {ENGINE_WAIT_S} s: {exc}") from exc
                time.sleep(2)
                continue
            self._lost = False
            return

    def _remove_earlier_attempts(self, task: CellTask) -> None:
        """A container of this cell from an attempt that lost the engine must not run beside the retry."""
        labels = [f"{RUN_LABEL}={task.run_id}", f"{CELL_LABEL}={_cell_label(task.cell)}"]
        for container in self.client.containers.list(all=True, filters={"label": labels}):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def host_resources(cells: list[Cell]) -> Resources:
    """This process's CPUs, and the GPUs NVML sees (looked for only when a cell needs one)."""
    gpus: tuple[int, ...] = ()
    if any(cell.gpus for cell in cells):
        gpus, note = host_gpu_ids()
        if note:
            system = next(cell.system for cell in cells if cell.gpus)
            raise UsageError(f"system {system} needs GPUs, but {note}: run `python -m orchestrator doctor`")
    return Resources(gpus=gpus, cpus=tuple(sorted(os.sched_getaffinity(0))))


def cell_container_spec(task: CellTask, data_dir: Path) -> ContainerSpec:
    """The container a cell runs in: only its results folder is writable, data and code are mounted read-only."""
    devices = task.placement.device_ids
    return ContainerSpec(
        image=task.image_id,
        command=workload_command(task.cell),
        mounts=[
            *dataset_mounts(task.cell, data_dir),
            Mount(WORKLOADS_DIR, f"{CONTAINER_CODE}/workloads"),
            Mount(task.cell_dir, CONTAINER_RESULTS, read_only=False),
            *(Mount(source, target) for source, target in plugin_mounts(task.cell)),
        ],
        labels={RUN_LABEL: task.run_id, CELL_LABEL: _cell_label(task.cell)},
        environment={"PYTHONPATH": CONTAINER_CODE},
        cpuset=task.placement.cpuset,
        memory=task.cell.memory,
        device_requests=[device_request(devices)] if devices else [],
    )


def dataset_mounts(cell: Cell, data_dir: Path) -> list[Mount]:
    """The cell's own dataset folder, at /data/<dataset>, read-only; mounted by its resolved path, so a
    dataset folder that is a link (data/imagenet -> a shared disk) brings what it points to. None
    where the folder does not exist (generated data): the engine would create it as root."""
    folder = data_dir / cell.dataset
    return [Mount(folder, f"{CONTAINER_DATA}/{cell.dataset}")] if folder.is_dir() else []


def _cell_label(cell: Cell) -> str:
    return f"{cell.config_hash}-r{cell.repeat}"
