"""The backends a run can use, by name: `run --backend` offers exactly these, and the runner builds
the chosen one (its allocator before anything starts, then the backend) from its entry here."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from orchestrator.backends import Backend, BackendName
from orchestrator.backends.hostinfo import host_info
from orchestrator.backends.local import LocalBackend, host_resources
from orchestrator.backends.slurm import ClusterAllocator, SlurmBackend, SlurmOptions
from orchestrator.run.plan import Cell
from orchestrator.run.scheduler import DEFAULT_CPUS_PER_CELL, Allocator


def _ignore(_: str) -> None:
    return None


@dataclass(frozen=True)
class BackendSetup:
    """What a backend is built from: the run's options, the system's Slurm placement merged in."""

    data_dir: Path
    sample_hz: float = 1.0
    pack: bool = False
    cpus_per_cell: int = DEFAULT_CPUS_PER_CELL
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    on_pending: Callable[[str], None] = _ignore  # a Slurm run says when jobs pend, and why


@dataclass(frozen=True)
class BackendKind:
    """One entry of the registry: how to place cells, how to build the backend, what the run records."""

    name: BackendName
    # Cells run on this host: its GPUs are known before the run (CUDA limits checked then), and its
    # load is worth a warning. Otherwise each cell's machine is known only once it runs there.
    on_this_host: bool
    allocator: Callable[[list[Cell], BackendSetup], Allocator]
    create: Callable[[docker.DockerClient, BackendSetup], Backend]
    # The run's `host` record: the machine itself, or only where the cells were submitted from
    # (then each cell records its own machine).
    run_host: Callable[[docker.DockerClient], dict[str, Any]]


def _local_allocator(cells: list[Cell], setup: BackendSetup) -> Allocator:
    return Allocator(host_resources(cells), pack=setup.pack, cpus_per_cell=setup.cpus_per_cell)


def _local(client: docker.DockerClient, setup: BackendSetup) -> Backend:
    return LocalBackend(client, setup.data_dir.resolve(), setup.sample_hz)


def _slurm(_: docker.DockerClient, setup: BackendSetup) -> Backend:
    return SlurmBackend(setup.slurm, setup.data_dir.resolve(), setup.sample_hz, setup.on_pending)


def _submit_host(_: docker.DockerClient) -> dict[str, Any]:
    return {"backend": BackendName.SLURM, "submit_host": socket.gethostname()}


BACKENDS: dict[BackendName, BackendKind] = {
    kind.name: kind
    for kind in (
        BackendKind(BackendName.LOCAL, True, _local_allocator, _local, host_info),
        BackendKind(
            BackendName.SLURM,
            False,
            lambda _, setup: ClusterAllocator(setup.slurm),
            _slurm,
            _submit_host,
        ),
    )
}


def backend_kind(name: str) -> BackendKind:
    """The registry entry for `name` (a `BackendName` or its value)."""
    return BACKENDS[BackendName(name)]
