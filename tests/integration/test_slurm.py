"""`run --backend slurm` against a real single-node Slurm cluster (scripts/slurm-local.sh) running
real containers: a matrix into the store, `results` like any other run, cancelled jobs, and
`--resume` of a Slurm run on the local backend."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.backends.engine import RUN_LABEL
from orchestrator.errors import ExitCode
from orchestrator.store.database import Store
from tests.conftest import REPO
from tests.integration.test_bundle import in_process

SCRIPT = REPO / "scripts" / "slurm-local.sh"
MLP = "{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32, 64], max_samples: 640, warmup_steps: 5}"
# Long enough (tens of seconds on 2 cores) that a job can be cancelled while its container runs.
SLOW_CNN = "{name: cnn, model: cnn, dataset: fashion_mnist, batch_sizes: [32], epochs: 8, warmup_steps: 5}"

DEAD_CLUSTER = (
    "ClusterName=nowhere\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=6999\n"
    "NodeName=localhost\nPartitionName=none Nodes=localhost\n"
)


def write_spec(path: Path, workload: str, repeats: int, memory: str = "2g") -> Path:
    path.write_text(
        f"name: slurm-ci\nreference: mxnet\nrepeats: {repeats}\n"
        f"systems: {{cpu: {{kind: cpu, memory: {memory}}}}}\n"
        'frameworks: [{name: mxnet, version: "1.9.1"}]\n'
        f"workloads:\n  - {workload}\n"
    )
    return path


def require(command: str, why: str) -> None:
    """Slurm's programs, which `make test` installs as root (scripts/ensure-test-deps.sh); skipped elsewhere."""
    if shutil.which(command) is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Slurm tests: {command} not found (`make test` installs slurm-wlm as root)")
        pytest.skip(f"{command} not found: {why} (as root, `make test` installs slurm-wlm and munge)")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> dict[str, str]:
    """A fresh cluster for this module; the environment (SLURM_CONF) its clients need."""
    require("slurmctld", "no Slurm to start a cluster with")
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("scripts/slurm-local.sh needs root (slurmd starts jobs as their users)")
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(SCRIPT), "start", str(state)], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    env = {"SLURM_CONF": re.search(r"export SLURM_CONF=(\S+)", started.stdout).group(1)}
    yield env
    subprocess.run(["bash", str(SCRIPT), "stop", str(state)], capture_output=True, timeout=120)


def squeue(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["squeue", "--noheader", *args], capture_output=True, text=True, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout


def slurm_job_ids(notes: list[str]) -> list[str]:
    return [match.group(1) for note in notes if (match := re.match(r"slurm job (\d+) on ", note))]


def run_args(spec: Path, work: Path, sample_data: Path, *extra: str) -> list[str]:
    return [
        "run", "--system", "cpu", "--spec", str(spec), "--data-dir", str(sample_data),
        "--results-dir", str(work / "results"), "--store", str(work / "results.db"), *extra,
    ]  # fmt: skip


def test_matrix_runs_as_slurm_jobs_into_the_store(slurm, built_images, sample_data, tmp_path, cli):
    spec = write_spec(tmp_path / "spec.yaml", MLP, repeats=2)
    started = time.monotonic()
    packed = ("--backend", "slurm", "--pack", "--cpus-per-cell", "1")  # nodes shared: two jobs at a time here
    done = cli(*run_args(spec, tmp_path, sample_data, *packed), env=slurm)
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    store = Store(str(tmp_path / "results.db"))
    rows = store.cell_rows(store.resolve_run("last"))
    assert len(rows) == 4 and {row.status for row in rows} == {"ok"}, [r.log_tail for r in rows]
    assert all(row.metrics["train_img_per_s"] > 0 for row in rows)
    assert {row.versions["mxnet"] for row in rows} == {"1.9.1"}
    jobs = [job for row in rows for job in slurm_job_ids(row.notes)]
    assert len(set(jobs)) == 4, [row.notes for row in rows]
    for row, job in zip(rows, jobs):  # each was a real job of the cell's name, completed by the controller
        state = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", job], capture_output=True, text=True, env={**os.environ, **slurm}
        ).stdout
        assert f"JobName=bm-{row.config_hash}-r{row.repeat}" in state and "JobState=COMPLETED" in state
    # Each cell's host was recorded on its node, by the job (this cluster's node is this machine:
    # Slurm's own node name and the job's id are what only the node side knows); the run names the
    # submit host as that only, not as the machine that ran the cells.
    node = subprocess.run(
        ["sinfo", "--noheader", "--Node", "--format=%N"], capture_output=True, text=True, env={**os.environ, **slurm}
    ).stdout.split()[0]
    assert [(row.host["slurm_node"], row.host["slurm_job_id"]) for row in rows] == [(node, j) for j in jobs]
    assert all(row.host["cores"] and row.host["docker_version"] for row in rows)
    run_host = json.loads(store.run_row(rows[0].run_id).host)
    assert run_host["backend"] == "slurm" and "hostname" not in run_host and "gpus" not in run_host
    results = cli("results", "--store", str(tmp_path / "results.db"))
    assert results.returncode == 0 and "Training speed" in results.stdout and "slurm job" in results.stdout
    print(f"slurm matrix: 4 cells in {wall:.1f} s wall (--pack: two 1-CPU jobs at a time on this node)")


def test_cancelled_jobs_are_interrupted_cells_and_resume_runs_them_locally(
    slurm, engine, built_images, sample_data, tmp_path, cli
):
    spec = write_spec(tmp_path / "spec.yaml", SLOW_CNN, repeats=2)
    # The defaults: each job has the node to itself and asks for no CPU count (--cpus-per-cell 4 > 2 CPUs here).
    args = run_args(spec, tmp_path, sample_data, "--backend", "slurm")
    orchestrator = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO,
        env={**os.environ, **slurm},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # While the second job waits for the node, the console says so, with Slurm's reason.
        said = lines_until(orchestrator, re.compile(r"slurm: 1 of 2 jobs pending \(\w+: 1\)"))
        run_id = wait_for_running_cell(engine, slurm)
        jobs = [line.split("|")[0] for line in squeue(slurm, "--format=%i|%k").splitlines() if run_id in line]
        assert len(jobs) == 2  # one running, one pending (each job has the node to itself)
        subprocess.run(["scancel", *jobs], check=True, env={**os.environ, **slurm})
        output, _ = orchestrator.communicate(timeout=180)
    finally:
        orchestrator.kill()
    output = said + output
    assert orchestrator.returncode == ExitCode.CELLS_FAILED, output[-4000:]
    store = Store(str(tmp_path / "results.db"))
    rows = store.cell_rows(run_id)
    assert [row.status for row in rows] == ["interrupted", "interrupted"], output[-3000:]
    assert all(any(note.endswith(": CANCELLED") for note in row.notes) for row in rows)
    assert engine.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}) == []

    resumed = cli(*run_args(spec, tmp_path, sample_data, "--resume", run_id, "--backend", "local"))
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    rows = store.cell_rows(run_id)
    assert [row.status for row in rows] == ["ok", "ok"]
    assert not any(slurm_job_ids(row.notes) for row in rows)  # this time run by the local backend


def lines_until(process: subprocess.Popen, pattern: re.Pattern) -> str:
    """`process`'s output up to the first line matching `pattern` (all of it, if none does)."""
    seen = []
    for line in iter(process.stdout.readline, ""):
        seen.append(line)
        if pattern.search(line):
            break
    assert seen and pattern.search(seen[-1]), "".join(seen)[-3000:]
    return "".join(seen)


def wait_for_running_cell(engine, slurm: dict[str, str], timeout_s: float = 120) -> str:
    """The run id once one of its jobs runs a container (so cancelling it stops a real cell)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = [line for line in squeue(slurm, "--format=%T|%k").splitlines() if line.startswith("RUNNING|")]
        for line in running:
            run_id = line.split("run=", 1)[1].split(" ", 1)[0]
            if engine.containers.list(filters={"label": f"{RUN_LABEL}={run_id}"}):
                return run_id
        time.sleep(0.5)
    raise AssertionError(f"no Slurm job ran a cell container within {timeout_s} s: {squeue(slurm)}")


@pytest.mark.parametrize(
    "extra, env, expected",
    [
        (("--slurm-partition", "debug; rm -rf /"), {}, "--slurm-partition 'debug; rm -rf /': String should match"),
        (("--slurm-time-limit", "0"), {}, "--slurm-time-limit 0"),
        ((), {"SLURM_CONF": "dead.conf"}, "no Slurm controller answers"),
    ],
)
def test_bad_slurm_input_is_refused_before_anything_runs(
    engine, sample_data, tmp_path, capsys, monkeypatch, extra, env, expected
):
    if env:  # a cluster whose controller does not run (nothing listens on its port)
        require("sinfo", "no Slurm client to ask the controller")
        dead = tmp_path / env["SLURM_CONF"]
        dead.write_text(DEAD_CLUSTER)
        monkeypatch.setenv("SLURM_CONF", str(dead))
    spec = write_spec(tmp_path / "spec.yaml", MLP, repeats=1)
    done = in_process(capsys, *run_args(spec, tmp_path, sample_data, "--backend", "slurm", *extra))
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert expected in done.stderr
    assert not (tmp_path / "results" / "runs").exists()
    assert not (tmp_path / "results.db").exists() or Store(str(tmp_path / "results.db")).run_ids() == []


@pytest.mark.parametrize(
    "extra, memory, asked",
    [
        (("--pack", "--cpus-per-cell", "64"), "2g", "each job asks for 64 CPU(s), 2048 MB of memory, 0 GPU(s)"),
        ((), "4000g", "each job asks for 1 CPU(s), 4096000 MB of memory, 0 GPU(s)"),
    ],
    ids=["cpus", "memory"],
)
def test_a_job_no_node_can_hold_is_refused_before_submission(slurm, sample_data, tmp_path, cli, extra, memory, asked):
    spec = write_spec(tmp_path / "spec.yaml", MLP, repeats=1, memory=memory)
    jobs_before = squeue(slurm, "--states=all", "--format=%i")
    done = cli(*run_args(spec, tmp_path, sample_data, "--backend", "slurm", *extra), env=slurm)
    assert done.returncode == ExitCode.USAGE, done.stdout[-2000:] + done.stderr[-2000:]
    node, cpus, memory_mb = next(
        line.split("|") for line in subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format=%N|%c|%m"], capture_output=True, text=True,
            env={**os.environ, **slurm}, check=True,
        ).stdout.splitlines()
    )  # fmt: skip
    largest = f"its largest, {node}, has {cpus} CPU(s), {memory_mb} MB of memory, 0 GPU(s)"
    assert asked in done.stderr and f"no node of Slurm partition debug has that; {largest}" in done.stderr
    assert squeue(slurm, "--states=all", "--format=%i") == jobs_before  # no job was submitted
    assert not (tmp_path / "results" / "runs").exists() and not (tmp_path / "results.db").exists()
