"""The one place that talks to the Docker engine for containers.

`CellContainer` is a context manager that always removes its container, even when the caller is
interrupted, and carries the hardened defaults every cell runs with.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Optional

import docker
import docker.errors
import requests.exceptions
from docker.types import DeviceRequest

from orchestrator.errors import EngineUnavailable

CELL_UID = "1000:1000"
RUN_LABEL = "benchmatrix.run"
CELL_LABEL = "benchmatrix.cell"
# host/pid/start-time of the orchestrator process that owns a container: finds orphans after a SIGKILL.
OWNER_LABEL = "benchmatrix.owner"
STOP_GRACE_S = 10
# Without a memory limit in the spec a cell may use this share of the engine's memory, so a runaway
# cell is OOM-killed in its own cgroup instead of taking the host (and the orchestrator) down.
DEFAULT_MEMORY_SHARE = 0.75
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
    memory: Optional[str] = None  # None: DEFAULT_MEMORY_SHARE of the engine's memory
    device_requests: list[DeviceRequest] = field(default_factory=list)
    tmpfs_size: str = "1g"
    shm_size: str = "1g"  # NCCL and multi-process data loaders need more than Docker's 64 MB
    pids_limit: int = 4096


@dataclass(frozen=True)
class ContainerExit:
    exit_code: Optional[int]
    timed_out: bool
    oom_killed: bool
    logs: str


class CellContainer:
    """Create on enter, remove on exit — whatever happened in between.

    Leaving on an exception (an interrupt) stops the container with a grace period first, so the
    workload can end cleanly; `init` makes SIGTERM reach it (a bare PID 1 ignores it).
    """

    def __init__(self, client: docker.DockerClient, spec: ContainerSpec) -> None:
        self.client = client
        self.spec = spec
        self.container = None

    def __enter__(self) -> CellContainer:
        spec = self.spec
        memory = spec.memory or default_memory_limit(self.client)
        self.container = self.client.containers.create(
            spec.image,
            command=spec.command,
            labels={**spec.labels, OWNER_LABEL: owner_id()},
            environment={"HOME": "/tmp", **spec.environment},
            user=CELL_UID,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={spec.tmpfs_size}"},
            shm_size=spec.shm_size,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            init=True,
            pids_limit=spec.pids_limit,
            cpuset_cpus=spec.cpuset,
            mem_limit=memory,
            memswap_limit=memory,
            device_requests=spec.device_requests or None,
            volumes={
                str(mount.source.resolve()): {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
                for mount in spec.mounts
            },
            detach=True,
        )
        return self

    def start(self) -> None:
        assert self.container is not None
        self.container.start()

    def wait(self, timeout_s: float) -> ContainerExit:
        """Wait up to `timeout_s` for the started container, kill it on timeout; exit code, flags, logs.

        A read timeout and a lost engine both surface as a `ConnectionError`; only one that comes
        at the deadline is a timeout, an earlier one (the engine went away) is raised.
        """
        assert self.container is not None
        deadline = time.monotonic() + timeout_s
        timed_out = False
        try:
            status = self.container.wait(timeout=timeout_s)
        except requests.exceptions.ConnectionError:
            if time.monotonic() < deadline - 1:
                raise
            timed_out = True
            try:
                self.container.kill()
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: it ended on its own just now
                    raise
            status = self.container.wait(timeout=60)
        self.container.reload()
        oom = bool(self.container.attrs["State"].get("OOMKilled"))
        logs = self.container.logs(stdout=True, stderr=True).decode(errors="replace")
        return ContainerExit(exit_code=status.get("StatusCode"), timed_out=timed_out, oom_killed=oom, logs=logs)

    def run(self, timeout_s: float) -> ContainerExit:
        self.start()
        return self.wait(timeout_s)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL after `grace_s` (the engine's `stop`)."""
        assert self.container is not None
        self.container.stop(timeout=grace_s)

    def __exit__(self, exc_type: Optional[type], *exc_info: object) -> None:
        if self.container is None:
            return
        try:
            if exc_type is not None:
                self.stop()
            self.container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.APIError, requests.exceptions.RequestException):
            if exc_type is None:
                raise  # otherwise the exception in flight says more than a failed clean-up


@cache
def owner_id() -> str:
    """This process as host/pid/start-time: a pid alone can be reused after a reboot or wrap-around."""
    return f"{socket.gethostname()}/{os.getpid()}/{_process_start(os.getpid())}"


def _process_start(pid: int) -> Optional[str]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def owner_alive(owner: str) -> bool:
    """Whether the orchestrator process named by an owner label still runs (on another host: assumed)."""
    host, _, rest = owner.partition("/")
    pid, _, started = rest.partition("/")
    if host != socket.gethostname():
        return True
    return pid.isdigit() and _process_start(int(pid)) == started


@dataclass(frozen=True)
class Orphan:
    container_id: str
    run_id: str
    cell: str
    owner: str
    state: str


def find_orphans(client: docker.DockerClient) -> list[Orphan]:
    """Cell containers whose orchestrator is gone (killed with SIGKILL, or the host rebooted)."""
    found = []
    for container in client.containers.list(all=True, filters={"label": RUN_LABEL}):
        owner = container.labels.get(OWNER_LABEL)
        if owner is None or owner_alive(owner):
            continue
        found.append(
            Orphan(
                container_id=container.id,
                run_id=container.labels[RUN_LABEL],
                cell=container.labels.get(CELL_LABEL, "?"),
                owner=owner,
                state=container.status,
            )
        )
    return found


@cache
def _engine_memory(client: docker.DockerClient) -> int:
    return int(client.info()["MemTotal"])


def default_memory_limit(client: docker.DockerClient) -> str:
    return str(int(_engine_memory(client) * DEFAULT_MEMORY_SHARE))


def writable_by_cell(path: Path) -> None:
    """The cell runs as uid 1000: hand it the results directory (chown as root, else open it up)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, 1000, 1000)
    else:
        path.chmod(0o777)
