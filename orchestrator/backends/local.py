"""Run a cell in a hardened container on this host's Docker engine."""

from __future__ import annotations

from pathlib import Path

import docker

from orchestrator.backends import (
    CONTAINER_CODE,
    CONTAINER_DATA,
    CONTAINER_RESULTS,
    LOG_FILE,
    CellRun,
    workload_command,
)
from orchestrator.engine import CELL_LABEL, RUN_LABEL, CellContainer, ContainerSpec, Mount, writable_by_cell
from orchestrator.plan import Cell

WORKLOADS_DIR = Path(__file__).resolve().parent.parent.parent / "workloads"


class LocalBackend:
    name = "local"

    def __init__(self, client: docker.DockerClient, run_id: str, data_dir: Path) -> None:
        self.client = client
        self.run_id = run_id
        self.data_dir = data_dir

    def run_cell(self, cell: Cell, image_id: str, cell_dir: Path) -> CellRun:
        writable_by_cell(cell_dir)
        spec = ContainerSpec(
            image=image_id,
            command=workload_command(cell),
            mounts=[
                Mount(self.data_dir, CONTAINER_DATA),
                Mount(WORKLOADS_DIR, f"{CONTAINER_CODE}/workloads"),
                Mount(cell_dir, CONTAINER_RESULTS, read_only=False),
            ],
            labels={RUN_LABEL: self.run_id, CELL_LABEL: f"{cell.config_hash}-r{cell.repeat}"},
            environment={"PYTHONPATH": CONTAINER_CODE},
            cpuset=cell.cpuset,
            memory=cell.memory,
        )
        with CellContainer(self.client, spec) as container:
            ended = container.run(timeout_s=cell.timeout_s)
        (cell_dir / LOG_FILE).write_text(ended.logs)
        return CellRun(
            exit_code=ended.exit_code, timed_out=ended.timed_out, oom_killed=ended.oom_killed, logs=ended.logs
        )
