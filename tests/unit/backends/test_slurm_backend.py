"""Slurm backend logic without a cluster: job arguments, state mapping, job and outcome files."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.backends import BackendError, CellRun, CellTask
from orchestrator.backends.slurm import (
    JobEnd,
    Size,
    SlurmBackend,
    SlurmOptions,
    gpu_count,
    job_size,
    memory_mb,
    outcome_from_job,
    parse_exit_code,
    parse_sinfo_nodes,
    parse_squeue,
    pending_summary,
    refuse_what_no_node_fits,
    sbatch_argv,
    slurm_memory,
    time_limit_min,
)
from orchestrator.backends.slurm_node import (
    JOB_FILE,
    cuda_refusal,
    node_placement,
    read_job_file,
    read_outcome,
    slurm_names,
    write_job_file,
    write_outcome,
)
from orchestrator.clock import now
from orchestrator.errors import SpecError, UsageError
from orchestrator.metrics import Metric
from orchestrator.run.execute import cell_record
from orchestrator.run.plan import Cell
from orchestrator.run.result import classify
from orchestrator.run.scheduler import Placement
from orchestrator.spec.matrix import SlurmPlacement, load_spec
from tests.unit.run.test_scheduler import cell as scheduler_cell

IMAGE_ID = "sha256:" + "12" * 32


def make_cell(**changes) -> Cell:
    """The scheduler tests' cell, as a Slurm job would carry it: capped, with a memory limit and an option."""
    slurm_cell = scheduler_cell(
        max_samples=640, warmup_steps=5, timeout_s=600, memory="2g", options=(("hybridize", True),), repeat=1
    )
    return replace(slurm_cell, **changes)


def make_task(tmp_path: Path, cell: Cell | None = None, timeout_s: float = 600) -> CellTask:
    return CellTask(
        run_id="20261122-000000-abcdef",
        cell=cell or make_cell(),
        image_id=IMAGE_ID,
        cell_dir=tmp_path / "cell",
        placement=Placement(),
        timeout_s=timeout_s,
    )


def status_of(ended: CellRun) -> str:
    """The status the runner stores for a job outcome (the runner's own mapping on top of ours)."""
    return (
        "interrupted" if ended.interrupted else classify(ended.exit_code, ended.timed_out, ended.oom_killed, "", True)
    )


@pytest.mark.parametrize(
    "memory, expected", [("8g", "8G"), ("512m", "512M"), ("100k", "100K"), ("1073741825", "1025M")]
)
def test_memory_in_sbatch_units(memory, expected):
    assert slurm_memory(memory) == expected


def test_cpu_cell_asks_for_cpus_memory_and_a_time_limit(tmp_path):
    task = make_task(tmp_path)
    argv = sbatch_argv(task, SlurmOptions(cpus_per_cell=3), Path("/run/job.sh"), Path("/run/cell/slurm-job.json"))
    assert argv[:2] == ["sbatch", "--parsable"]
    assert "--mem=2G" in argv and "--time=15" in argv  # 600 s + 300 s margin
    assert not any(arg.startswith("--gres") for arg in argv)
    # By default a cell has its node to itself, whatever its size: it asks for no CPU count the node may lack.
    assert "--exclusive" in argv and not any(arg.startswith("--cpus-per-task") for arg in argv)
    packed = sbatch_argv(task, SlurmOptions.from_cli(None, None, None, 3, pack=True), Path("j.sh"), Path("job.json"))
    assert "--exclusive" not in packed and "--cpus-per-task=3" in packed  # --cpus-per-cell is for --pack
    job = ["/run/job.sh", sys.executable, "-m", "orchestrator", "run-cell", "/run/cell/slurm-job.json"]
    assert argv[-6:] == job  # the constant script runs its arguments: nothing passes through a shell
    assert f"--job-name=bm-{task.cell.config_hash}-r1" in argv
    assert any(arg.startswith("--comment=benchmatrix run=20261122-000000-abcdef owner=") for arg in argv)


def test_gpu_cell_asks_for_gres_and_a_pinned_cpuset_sets_the_cpu_count(tmp_path):
    cell = make_cell(system="4_gpu", system_kind="gpu", gpus=4, cpuset="0-7", memory=None)
    argv = sbatch_argv(make_task(tmp_path, cell), SlurmOptions(cpus_per_cell=2), Path("j.sh"), Path("job.json"))
    assert "--gres=gpu:4" in argv and "--cpus-per-task=8" in argv
    assert not any(arg.startswith("--mem") for arg in argv)


def test_partition_account_and_time_limit_come_from_cli_over_spec(tmp_path):
    cli = SlurmOptions.from_cli("short", None, None, 1)
    options = cli.for_system(SlurmPlacement(partition="long", account="lab", time_limit_min=90))
    argv = sbatch_argv(make_task(tmp_path), options, Path("j.sh"), Path("job.json"))
    assert "--partition=short" in argv and "--account=lab" in argv and "--time=90" in argv
    assert time_limit_min(make_task(tmp_path, timeout_s=30), SlurmOptions()) == 6


@pytest.mark.parametrize(
    "args, message",
    [
        (("gpu; rm -rf /", None, None, 1), "--slurm-partition"),
        ((None, "-x", None, 1), "--slurm-account"),
        ((None, None, 0, 1), "--slurm-time-limit 0: Input should be greater than or equal to 1"),
        ((None, None, None, 0), "--cpus-per-cell must be at least 1"),
    ],
)
def test_bad_cli_options_are_refused(args, message):
    with pytest.raises(UsageError) as refused:
        SlurmOptions.from_cli(*args)
    assert message in str(refused.value) and refused.value.exit_code == 2


def test_spec_slurm_values_are_validated(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: t\nsystems: {cpu: {kind: cpu, slurm: {partition: 'a b'}}}\n"
        "frameworks: [{name: mxnet, version: '1.9.1'}]\n"
        "workloads: [{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32]}]\n"
    )
    with pytest.raises(SpecError, match="systems.cpu.slurm.partition"):
        load_spec(spec)


def test_squeue_and_scontrol_parsing():
    text = "12|RUNNING|node1|None\n13|PENDING||Resources\n14|CANCELLED+|node2|None\n"
    assert parse_squeue(text) == {
        "12": ("RUNNING", "node1", ""),
        "13": ("PENDING", "", "Resources"),
        "14": ("CANCELLED", "node2", ""),
    }
    assert parse_exit_code("JobId=12 JobState=FAILED Reason=NonZeroExitCode ExitCode=2:0 RunTime=1") == 2
    assert parse_exit_code("JobId=12 DerivedExitCode=0:0 ExitCode=0:9") == 137
    assert parse_exit_code("nothing here") is None


@pytest.mark.parametrize(
    "state, expected",
    [
        ("TIMEOUT", "timeout"),
        ("DEADLINE", "timeout"),
        ("OUT_OF_MEMORY", "oom"),
        ("CANCELLED", "interrupted"),
        ("PREEMPTED", "interrupted"),
        ("FAILED", "error"),
        ("NODE_FAIL", "error"),
        ("COMPLETED", "error"),  # completed, but the node wrote no outcome: something is wrong
        ("VANISHED", "error"),
    ],
)
def test_job_state_without_an_outcome_maps_to_a_cell_status(state, expected):
    ended = outcome_from_job(JobEnd("7", state, 1, "node1", 15), None, "last lines")
    assert status_of(ended) == expected
    assert ended.notes[0].startswith(f"slurm job 7 on node1: {state}")
    assert "last lines" in ended.logs


def test_the_node_outcome_stands_and_slurm_verdicts_override_it():
    node = CellRun(exit_code=0, timed_out=False, oom_killed=False, logs="", notes=("monitor: no GPU",))
    assert status_of(outcome_from_job(JobEnd("8", "COMPLETED", 0, "n", 15), node, "")) == "ok"
    stopped = replace(node, exit_code=143, interrupted=True)  # SIGTERM at the time limit stopped the container
    timed_out = outcome_from_job(JobEnd("8", "TIMEOUT", 0, "n", 1), stopped, "")
    assert status_of(timed_out) == "timeout" and timed_out.notes == (
        "monitor: no GPU",
        "slurm job 8 on n: TIMEOUT (the job's time limit of 1 min ran out)",
    )


def test_a_slurm_time_limit_is_stored_as_such_not_as_the_cells_own_timeout(tmp_path):
    node = CellRun(exit_code=143, timed_out=False, oom_killed=False, logs="", interrupted=True)
    ended = outcome_from_job(JobEnd("9", "TIMEOUT", 0, "n", 1), node, "")
    record = cell_record(make_task(tmp_path, timeout_s=600), ended, now(), [])
    assert record.status == "timeout"
    assert "slurm job 9 on n: TIMEOUT (the job's time limit of 1 min ran out)" in record.notes
    assert not any(note.startswith("killed after") for note in record.notes)


def test_job_file_round_trip_keeps_the_cell_identity(tmp_path):
    task = make_task(tmp_path)
    task.cell_dir.mkdir()
    path = write_job_file(task, tmp_path / "data", 2.0)
    read, data_dir, sample_hz = read_job_file(path)
    assert read.cell == task.cell and read.cell.config_hash == task.cell.config_hash
    assert (read.run_id, read.image_id, read.timeout_s) == (task.run_id, IMAGE_ID, 600)
    assert read.cell_dir == task.cell_dir.resolve() and data_dir == (tmp_path / "data").resolve() and sample_hz == 2.0


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda job: job.update(image_id="latest"), "image_id"),
        (lambda job: job.update(schema="benchmatrix.slurm-job/9"), "schema"),
        (lambda job: job["cell"].update(batch_size=64), "config_hash"),
        (lambda job: job["cell"].update(colour="red"), "cell"),
        (lambda job: job.update(timeout_s=0), "timeout_s"),
    ],
)
def test_bad_job_file_names_the_key(tmp_path, change, key):
    task = make_task(tmp_path)
    task.cell_dir.mkdir()
    path = write_job_file(task, tmp_path, 1.0)
    job = json.loads(path.read_text())
    change(job)
    path.write_text(json.dumps(job))
    with pytest.raises(SpecError, match=f"{JOB_FILE} at key '{key}'"):
        read_job_file(path)


def test_node_placement_takes_slurm_gpus_for_gpu_cells_only():
    gpu_cell = make_cell(system_kind="gpu", gpus=2)
    assert node_placement(gpu_cell, {"SLURM_JOB_GPUS": "2,3"}).device_ids == (2, 3)
    assert node_placement(make_cell(), {"SLURM_JOB_GPUS": "0"}).device_ids == ()


def test_outcome_round_trip_and_a_stale_outcome_is_ignored(tmp_path):
    task = make_task(tmp_path)
    task.cell_dir.mkdir()
    ended = CellRun(
        exit_code=0,
        timed_out=False,
        oom_killed=False,
        logs="ignored: logs live in log.txt",
        metrics=(Metric("container_cpu_pct_mean", 97.0, "%"),),
        notes=("n",),
    )
    write_outcome(task, ended)
    assert read_outcome(task, "the log")["ended"] == replace(ended, logs="the log")
    other_image = replace(task, image_id="sha256:" + "34" * 32)
    assert read_outcome(other_image, "") is None
    write_outcome(task, None, lost="engine restarted")
    assert read_outcome(task, "")["lost"] == "engine restarted"


SINFO = "n1|debug*|2|3900|(null)\nn2|debug*|8|64000|gpu:a100:2(S:0-1)\nn2|gpu|8|64000|gpu:a100:2(S:0-1)\n"


def test_sinfo_nodes_and_the_default_partition():
    partitions, default = parse_sinfo_nodes(SINFO)
    assert default == "debug"
    assert partitions["debug"] == {"n1": Size(2, 3900, 0), "n2": Size(8, 64000, 2)}
    assert set(partitions["gpu"]) == {"n2"}
    assert gpu_count("gpu:1,gpu:v100:2(S:0),mps:100") == 3 and gpu_count("(null)") == 0


@pytest.mark.parametrize(
    "changes, options, message",
    [
        ({"cpuset": "0-15", "memory": None}, SlurmOptions(), "asks for 16 CPU(s), 0 MB of memory, 0 GPU(s)"),
        ({"memory": "100g"}, SlurmOptions(), "asks for 1 CPU(s), 102400 MB of memory, 0 GPU(s)"),
        ({"gpus": 4, "memory": None}, SlurmOptions(), "asks for 1 CPU(s), 0 MB of memory, 4 GPU(s)"),
        ({"memory": None}, SlurmOptions(cpus_per_cell=12, exclusive=False), "12 CPU(s), 0 MB of memory, 0 GPU(s)"),
    ],
)
def test_a_job_no_node_of_its_partition_fits_is_refused_naming_the_largest(changes, options, message):
    partitions, _ = parse_sinfo_nodes(SINFO)
    with pytest.raises(UsageError) as refused:
        refuse_what_no_node_fits([make_cell(**changes)], options, partitions["debug"], "debug")
    assert message in str(refused.value) and refused.value.exit_code == 2
    assert (
        "no node of Slurm partition debug has that; its largest, n2, has 8 CPU(s), 64000 MB of memory, 2 GPU(s)"
        in str(refused.value)
    )


def test_jobs_some_node_fits_pass_and_an_exclusive_job_asks_no_cpu_count():
    partitions, _ = parse_sinfo_nodes(SINFO)
    cells = [make_cell(memory="60g"), make_cell(gpus=2, memory=None)]  # only n2 holds either
    refuse_what_no_node_fits(cells, SlurmOptions(cpus_per_cell=64), partitions["debug"], "debug")  # exclusive
    assert job_size(make_cell(memory="512m"), SlurmOptions(cpus_per_cell=64)) == Size(1, 512, 0)
    assert memory_mb("100k") == 1 and memory_mb("1073741825") == 1025


def test_pending_jobs_are_counted_with_their_reasons():
    states = {"1": ("RUNNING", "n1", ""), "2": ("PENDING", "", "Resources"), "3": ("PENDING", "", "Priority")}
    states["4"] = ("PENDING", "", "Resources")
    assert pending_summary(states, ["1", "2", "3", "4"]) == "3 of 4 jobs pending (Resources: 2, Priority: 1)"
    assert pending_summary(states, ["1"]) == ""
    assert pending_summary({}, ["9"]) == ""  # not polled yet: nothing to say


NODE_HOST = {
    "hostname": "node7",
    "gpus": [
        {"index": 0, "name": "NVIDIA H100", "compute_capability": "9.0", "memory_bytes": 80 * 2**30, "driver": "550"},
        {"index": 1, "name": "NVIDIA B200", "compute_capability": "10.0", "memory_bytes": 80 * 2**30, "driver": "550"},
    ],
    "slurm_node": "node7",
    "slurm_job_id": "123",
}


class FakeSlurm:
    """`Slurm` as the backend calls it; `sbatch` runs `node` (what the job does on its node) at once."""

    def __init__(self, node) -> None:
        self.node = node
        self.submitted: list[list[str]] = []

    def check_cluster(self) -> None:
        return None

    def call(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        if argv[0] == "sbatch":
            self.submitted.append(argv)
            self.node()
            return subprocess.CompletedProcess(argv, 0, stdout="123\n", stderr="")
        return subprocess.CompletedProcess(argv, 0, stdout="", stderr="")

    def states(self, job_ids: list[str]) -> dict[str, tuple[str, str, str]]:
        return {job: ("COMPLETED", "node7", "") for job in job_ids}

    def exit_code(self, job_id: str) -> int:
        return 0


def slurm_backend(monkeypatch, tmp_path: Path, node) -> SlurmBackend:
    fake = FakeSlurm(node)
    monkeypatch.setattr("orchestrator.backends.slurm.Slurm", lambda: fake)
    return SlurmBackend(SlurmOptions(poll_s=0.01), tmp_path / "data")


def test_a_slurm_cell_carries_the_host_its_node_recorded_there(monkeypatch, tmp_path):
    task = make_task(tmp_path)
    ended = CellRun(exit_code=0, timed_out=False, oom_killed=False, logs="", host=NODE_HOST)
    backend = slurm_backend(monkeypatch, tmp_path, lambda: write_outcome(task, ended))
    got = backend.run_cell(task)
    assert got.host == NODE_HOST
    assert cell_record(task, got, now(), []).host == NODE_HOST  # what the store keeps as the cell's host


def test_a_node_whose_engine_refused_the_cell_is_a_backend_error_for_the_runner(monkeypatch, tmp_path):
    task = make_task(tmp_path)
    refused = "the Docker engine refused it: could not select device driver"
    backend = slurm_backend(monkeypatch, tmp_path, lambda: write_outcome(task, None, error=refused))
    with pytest.raises(BackendError, match=r"slurm job 123 on node7: the Docker engine refused it"):
        backend.run_cell(task)


def test_a_job_file_that_cannot_be_written_is_the_cells_error(monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("")
    task = replace(make_task(tmp_path), cell_dir=tmp_path / "a-file" / "cell")
    with pytest.raises(BackendError, match="cannot write its Slurm job"):
        slurm_backend(monkeypatch, tmp_path, lambda: None).run_cell(task)


def test_the_nodes_names_come_from_slurms_environment():
    names = slurm_names({"SLURMD_NODENAME": "node7", "SLURM_JOB_ID": "123", "HOSTNAME": "login1"})
    assert names == {"slurm_node": "node7", "slurm_job_id": "123"}


def test_cuda_limits_are_checked_against_the_gpus_slurm_gave_the_job_on_its_node(tmp_path):
    gpu_cell = make_cell(system_kind="gpu", gpus=1)

    def on_gpu(index: int) -> CellTask:
        return replace(make_task(tmp_path, gpu_cell), placement=Placement(device_ids=(index,)))

    assert cuda_refusal(on_gpu(0), "12.1", NODE_HOST) is None  # Hopper: CUDA 12.1 compiles for it
    refused = cuda_refusal(on_gpu(1), "12.1", NODE_HOST)
    assert refused is not None and "node node7's GPUs" in refused and "GPU 1 (NVIDIA B200" in refused
    assert cuda_refusal(on_gpu(1), "12.8", NODE_HOST) is None  # Blackwell needs CUDA 12.8
    assert cuda_refusal(make_task(tmp_path), "12.1", NODE_HOST) is None  # a CPU cell uses no GPU
