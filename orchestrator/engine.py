"""The one place that talks to the Docker engine for containers.

`CellContainer` is a context manager that always removes its container, even when the caller is
interrupted, and carries the hardened defaults every cell runs with.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import docker
import docker.errors
import requests.exceptions

from orchestrator.errors import EngineUnavailable

CELL_UID = "1000:1000"
RUN_LABEL = "benchmatrix.run"
CELL_LABEL = "benchmatrix.cell"
START_HINT = (
    "start one as root with: apt-get install -y docker.io && (setsid dockerd >/var/log/dockerd.log 2>&1 &) "
    "— or run `make engine`, which does this"
)


def connect() -> docker.DockerClient:
    """A client for the engine named by DOCKER_HOST (default the local socket), checked with a ping."""
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailable(f"no Docker engine answers ({exc}); {START_HINT}") from exc
    return client


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass
class ContainerSpec:
    """What a cell container needs; everything not named here stays at the hardened default."""

    image: str
    command: list[str]
    mounts: list[Mount]
    labels: dict[str, str]
    environment: dict[str, str] = field(default_factory=dict)
    cpuset: Optional[str] = None
    memory: Optional[str] = None
    tmpfs_size: str = "1g"
    pids_limit: int = 4096


@dataclass(frozen=True)
class ContainerExit:
    exit_code: Optional[int]
    timed_out: bool
    oom_killed: bool
    logs: str


class CellContainer:
    """Create on enter, remove on exit — whatever happened in between."""

    def __init__(self, client: docker.DockerClient, spec: ContainerSpec) -> None:
        self.client = client
        self.spec = spec
        self.container = None

    def __enter__(self) -> CellContainer:
        spec = self.spec
        self.container = self.client.containers.create(
            spec.image,
            command=spec.command,
            labels=spec.labels,
            environment={"HOME": "/tmp", **spec.environment},
            user=CELL_UID,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={spec.tmpfs_size}"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=spec.pids_limit,
            cpuset_cpus=spec.cpuset,
            mem_limit=spec.memory,
            memswap_limit=spec.memory,
            volumes={
                str(mount.source.resolve()): {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
                for mount in spec.mounts
            },
            detach=True,
        )
        return self

    def run(self, timeout_s: float) -> ContainerExit:
        """Start, wait up to `timeout_s`, kill on timeout; return exit code, flags and logs."""
        assert self.container is not None
        self.container.start()
        timed_out = False
        try:
            status = self.container.wait(timeout=timeout_s)
            exit_code: Optional[int] = status.get("StatusCode")
        except requests.exceptions.ConnectionError:
            timed_out = True
            self.container.kill()
            exit_code = self.container.wait(timeout=60).get("StatusCode")
        self.container.reload()
        oom = bool(self.container.attrs["State"].get("OOMKilled"))
        logs = self.container.logs(stdout=True, stderr=True).decode(errors="replace")
        return ContainerExit(exit_code=exit_code, timed_out=timed_out, oom_killed=oom, logs=logs)

    def __exit__(self, *exc_info: object) -> None:
        if self.container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.container.remove(force=True)


def writable_by_cell(path: Path) -> None:
    """The cell runs as uid 1000: hand it the results directory (chown as root, else open it up)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, 1000, 1000)
    else:
        path.chmod(0o777)
