"""Cell containers are hardened and always removed (inspected on the real engine)."""

from __future__ import annotations

import docker.errors
import pytest

from orchestrator.engine import CELL_LABEL, RUN_LABEL, CellContainer, ContainerSpec, Mount, writable_by_cell

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
    assert attrs["Config"]["User"] == "1000:1000"
    assert attrs["Config"]["Labels"][RUN_LABEL] == "test-run"
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
