"""Cell containers are hardened and always removed (inspected on the real engine)."""

from __future__ import annotations

import docker.errors
import pytest

from orchestrator.devices import device_request
from orchestrator.engine import (
    CELL_LABEL,
    OWNER_LABEL,
    RUN_LABEL,
    CellContainer,
    ContainerSpec,
    Mount,
    default_memory_limit,
    owner_id,
    writable_by_cell,
)

PROBE = """
import os, socket
print("uid", os.getuid())
try:
    open("/data/x", "w")
    print("data writable")
except OSError:
    print("data read-only")
try:
    open("/etc/x", "w")
    print("root writable")
except OSError:
    print("root read-only")
open("/results/out.txt", "w").write("ok")
open("/tmp/scratch", "w").write("ok")
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("network up")
except OSError:
    print("network down")
"""


def test_hardened_cell_container(engine, built_images, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    results = tmp_path / "results"
    writable_by_cell(results)
    spec = ContainerSpec(
        image="benchmatrix/mxnet:1.9.1-cpu",
        command=["python3", "-c", PROBE],
        mounts=[Mount(data_dir, "/data"), Mount(results, "/results", read_only=False)],
        labels={RUN_LABEL: "test-run", CELL_LABEL: "test-cell"},
        cpuset="0",
        memory="1g",
    )
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
    assert attrs["Config"]["User"] == "1000:1000"
    assert attrs["Config"]["Labels"][RUN_LABEL] == "test-run"
    assert attrs["Config"]["Labels"][OWNER_LABEL] == owner_id()
    assert ended.exit_code == 0, ended.logs
    assert ended.logs.split("\n")[:4] == ["uid 1000", "data read-only", "root read-only", "network down"]
    assert (results / "out.txt").read_text() == "ok"
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
    assert host["Memory"] == int(default_memory_limit(engine)) > 0
    assert host["MemorySwap"] == host["Memory"]  # no swap beyond the limit
    assert host["PidsLimit"] == 4096
    (request,) = host["DeviceRequests"]
    assert request["DeviceIDs"] == ["1", "3"] and request["Capabilities"] == [["gpu"]]
