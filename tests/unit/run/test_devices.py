"""GPU device requests and global batch sizes, and how `plan --system 4_gpu` shows them."""

from __future__ import annotations

import json

from orchestrator.backends import workload_command
from orchestrator.run.devices import describe_request, device_request, global_batch, plan_fields, planned_device_ids
from tests.unit.run.test_scheduler import cell, gpu_cell


def test_device_request_names_exactly_the_devices_with_the_gpu_capability():
    request = device_request((0, 2))
    assert request["DeviceIDs"] == ["0", "2"]
    assert request["Capabilities"] == [["gpu"]]
    assert request["Count"] == 0  # ids, not "any N": the scheduler decides which devices


def test_describe_request_spells_the_docker_cli_form():
    assert describe_request((0, 1, 2, 3)) == "--gpus '\"device=0,1,2,3\"'"
    assert describe_request(()) == ""


def test_planned_devices_are_the_spec_ids_or_the_first_n():
    assert planned_device_ids(gpu_cell(4)) == (0, 1, 2, 3)
    assert planned_device_ids(gpu_cell(2, device_ids=(4, 6))) == (4, 6)
    assert planned_device_ids(cell()) == ()


def test_multi_gpu_cells_train_one_replica_per_gpu():
    def replicas(command: list[str]) -> str | None:
        return command[command.index("--replicas") + 1] if "--replicas" in command else None

    assert replicas(workload_command(gpu_cell(4, batch_size=64))) == "4"
    assert replicas(workload_command(gpu_cell(1))) is None
    assert replicas(workload_command(cell())) is None
    assert replicas(workload_command(gpu_cell(4, model="ops", dataset="none"))) is None  # one device by design


def test_global_batch_is_per_gpu_batch_times_gpus():
    assert global_batch(gpu_cell(4, batch_size=64)) == 256
    assert global_batch(gpu_cell(1, batch_size=64)) == 64
    assert global_batch(cell(batch_size=32)) == 32
    assert plan_fields(gpu_cell(4, batch_size=32)) == {
        "global_batch": 128,
        "device_ids": [0, 1, 2, 3],
        "device_request": "--gpus '\"device=0,1,2,3\"'",
    }


def test_plan_shows_device_requests_and_global_batch_for_4_gpu(cli):
    done = cli("plan", "--system", "4_gpu", "--framework", "pytorch", env={"COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    assert "--gpus '\"device=0,1,2,3\"'" in done.stdout
    assert "global batch" in done.stdout and "128" in done.stdout
    assert "global batch = batch × GPUs" in done.stdout
    cells = json.loads(cli("plan", "--system", "4_gpu", "--json").stdout)
    assert {c["global_batch"] for c in cells} == {128}
    assert all(c["device_ids"] == [0, 1, 2, 3] and c["gpus"] == 4 for c in cells)
