"""Cell containers are hardened and always removed (inspected on the real engine)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import docker.errors
import pytest

from orchestrator.backends import CONTAINER_CODE, BackendError, CellTask
from orchestrator.backends.engine import (
    OWNER_LABEL,
    RUN_LABEL,
    CellContainer,
    ContainerSpec,
    Mount,
    owner_id,
    writable_by_cell,
)
from orchestrator.backends.local import LocalBackend, cell_container_spec
from orchestrator.run.devices import device_request
from orchestrator.run.plan import Cell
from orchestrator.run.scheduler import Placement

IMAGE = "benchmatrix/mxnet:1.9.1-cpu"

# Tries every write a cell must not make, and the network; prints one line per attempt with the errno.
PROBE = """
import errno, os, socket
print("uid", os.getuid())
for path in ("/data/fashion_mnist/x", "/opt/benchmatrix/workloads/x", "/etc/x", "/var/tmp/x", "/x"):
    try:
        open(path, "w").close()
        print(path, "written")
    except OSError as exc:
        print(path, errno.errorcode[exc.errno])
open("/results/out.txt", "w").write("ok")
open("/tmp/scratch", "w").write("ok")
print("/tmp", next(line.split()[2] for line in open("/proc/mounts") if line.split()[1] == "/tmp"))
print("interfaces", sorted(os.listdir("/sys/class/net")))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("network up")
except OSError:
    print("network down")
"""
# EROFS, not EACCES: the mount (not uid 1000's lack of permission) refuses, even in a world-writable folder.
REFUSED = [
    "/data/fashion_mnist/x EROFS",
    "/opt/benchmatrix/workloads/x EROFS",
    "/etc/x EROFS",
    "/var/tmp/x EROFS",
    "/x EROFS",
]


def probe_task(tmp_path: Path, folder_mode: int) -> tuple[CellTask, Path]:
    """A real cell's task whose data and code folders on the host have `folder_mode`."""
    data_dir, code_dir, cell_dir = tmp_path / "data" / "fashion_mnist", tmp_path / "code", tmp_path / "cell"
    for folder in (data_dir, code_dir):
        folder.mkdir(parents=True)
        folder.chmod(folder_mode)  # 0o777: only the read-only mount stops uid 1000
    writable_by_cell(cell_dir)
    cell = Cell(
        system="cpu", system_kind="cpu", framework="mxnet", version="1.9.1", variant="cpu",
        image=IMAGE, workload="probe", model="mlp", dataset="fashion_mnist", batch_size=32, epochs=1,
        optimizer="adam", lr=0.001, max_samples=None, warmup_steps=0, timeout_s=120, cpuset="0", memory="1g",
    )  # fmt: skip
    task = CellTask("test-run", cell, IMAGE, cell_dir, Placement(cpuset="0"), timeout_s=120)
    return task, code_dir


@pytest.mark.parametrize("folder_mode", [0o755, 0o777], ids=["root-owned", "world-writable"])
def test_hardened_cell_container(engine, built_images, tmp_path, folder_mode):
    task, code_dir = probe_task(tmp_path, folder_mode)
    spec = cell_container_spec(task, tmp_path / "data")
    # The cell's own mounts, its code from a folder of `folder_mode` instead of the checkout.
    code_target = f"{CONTAINER_CODE}/workloads"
    mounts = [Mount(code_dir, m.target, m.read_only) if m.target == code_target else m for m in spec.mounts]
    spec = replace(spec, command=["python3", "-c", PROBE], mounts=mounts)
    with CellContainer(engine, spec) as cell:
        attrs = engine.api.inspect_container(cell.container.id)
        ended = cell.run(timeout_s=120)
        container_id = cell.container.id
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["CpusetCpus"] == "0" and host["Memory"] == 1024**3
    assert host["PidsLimit"] > 0
    assert host["Init"] is True  # tini as PID 1: a stop's SIGTERM reaches the workload
    assert host["ShmSize"] == 1024**3
    assert host["Tmpfs"] == {"/tmp": "rw,exec,nosuid,nodev,size=1g"}
    mounted = {m["Destination"]: (m["Type"], m["RW"]) for m in attrs["Mounts"]}
    # Only the cell's own dataset folder is mounted (by its resolved path), read-only like the code.
    data = "/data/fashion_mnist"
    assert mounted == {data: ("bind", False), code_target: ("bind", False), "/results": ("bind", True)}
    assert attrs["Config"]["User"] == "1000:1000"
    assert attrs["Config"]["Labels"][RUN_LABEL] == "test-run"
    assert attrs["Config"]["Labels"][OWNER_LABEL] == owner_id()
    assert ended.exit_code == 0, ended.logs
    lines = ended.logs.strip().split("\n")
    assert lines == ["uid 1000", *REFUSED, "/tmp tmpfs", "interfaces ['lo']", "network down"], ended.logs
    assert (task.cell_dir / "out.txt").read_text() == "ok"
    assert list((tmp_path / "data" / "fashion_mnist").iterdir()) == [] and list(code_dir.iterdir()) == []
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(container_id)


def test_timeout_kills_and_removes(engine, built_images, tmp_path):
    spec = ContainerSpec(
        image="benchmatrix/mxnet:1.9.1-cpu", command=["sleep", "60"], mounts=[], labels={RUN_LABEL: "test-timeout"}
    )
    with CellContainer(engine, spec) as cell:
        ended = cell.run(timeout_s=2)
        container_id = cell.container.id
    assert ended.timed_out and ended.exit_code != 0
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(container_id)


def test_defaults_without_spec_limits_and_the_gpu_device_request(engine, built_images):
    """No memory in the spec still means a limit; a GPU cell asks for exactly its devices.

    Only created, not started: starting a device request needs the NVIDIA runtime, absent here.
    """
    spec = ContainerSpec(
        image="benchmatrix/mxnet:1.9.1-cpu",
        command=["true"],
        mounts=[],
        labels={RUN_LABEL: "test-defaults"},
        device_requests=[device_request((1, 3))],
    )
    with CellContainer(engine, spec) as cell:
        host = engine.api.inspect_container(cell.container.id)["HostConfig"]
    # docs/systems.md's promise, from the engine's own total: 75 % of it, no swap beyond.
    assert host["Memory"] == int(engine.info()["MemTotal"] * 3 / 4) > 0
    assert host["MemorySwap"] == host["Memory"]  # no swap beyond the limit
    assert host["PidsLimit"] == 4096
    (request,) = host["DeviceRequests"]
    assert request["DeviceIDs"] == ["1", "3"] and request["Capabilities"] == [["gpu"]]


def test_an_engine_that_cannot_give_a_cell_its_gpus_is_the_cells_error(engine, built_images, tmp_path):
    """The real engine's refusal (an `APIError`, which is also a requests error) reaches the runner
    as the interface's `BackendError`: stored as that cell's error, the matrix goes on."""
    if "nvidia" in engine.info().get("Runtimes", {}):
        pytest.skip("this engine has the NVIDIA runtime: it would give the cell its GPU")
    task, _ = probe_task(tmp_path, 0o755)
    gpu_cell = replace(task.cell, system_kind="gpu", gpus=1, cpuset=None)
    gpu_task = replace(task, cell=gpu_cell, placement=Placement(device_ids=(0,)))
    backend = LocalBackend(engine, tmp_path / "data", sample_hz=0)
    with pytest.raises(BackendError, match="the Docker engine refused") as raised:
        backend.run_cell(gpu_task)
    assert isinstance(raised.value.__cause__, docker.errors.APIError)
    assert not engine.containers.list(all=True, filters={"label": f"{RUN_LABEL}=test-run"})  # and it is gone
