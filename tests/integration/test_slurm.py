"""`run --backend slurm` against a real single-node Slurm cluster (scripts/slurm-local.sh) running
real containers: a matrix into the store, `results` like any other run, cancelled jobs, and
`--resume` of a Slurm run on the local backend."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.engine import RUN_LABEL
from orchestrator.errors import ExitCode
from orchestrator.store import Store
from tests.conftest import REPO
from tests.integration.test_bundle import in_process

SCRIPT = REPO / "scripts" / "slurm-local.sh"
MLP = "{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32, 64], max_samples: 640, warmup_steps: 5}"
# Long enough (tens of seconds on 2 cores) that a job can be cancelled while its container runs.
SLOW_CNN = "{name: cnn, model: cnn, dataset: fashion_mnist, batch_sizes: [32], epochs: 2, warmup_steps: 5}"

DEAD_CLUSTER = (
    "ClusterName=nowhere\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=6999\n"
    "NodeName=localhost\nPartitionName=none Nodes=localhost\n"
)


def write_spec(path: Path, workload: str, repeats: int) -> Path:
    path.write_text(
        f"name: slurm-ci\nreference: mxnet\nrepeats: {repeats}\n"
        "systems: {cpu: {kind: cpu, memory: 2g}}\n"
        'frameworks: [{name: mxnet, version: "1.9.1"}]\n'
        f"workloads:\n  - {workload}\n"
    )
    return path


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> dict[str, str]:
    """A fresh cluster for this module; the environment (SLURM_CONF) its clients need."""
    if shutil.which("slurmctld") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the Slurm tests: apt-get install -y slurm-wlm munge (see .ci/run)")
        pytest.skip("slurm-wlm is not installed")
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
    assert len(rows) == 4 and {row["status"] for row in rows} == {"ok"}, [r["log_tail"] for r in rows]
    assert all(row["metrics"]["train_img_per_s"] > 0 for row in rows)
    assert {row["versions"]["mxnet"] for row in rows} == {"1.9.1"}
    jobs = [job for row in rows for job in slurm_job_ids(row["notes"])]
    assert len(set(jobs)) == 4, [row["notes"] for row in rows]
    for row, job in zip(rows, jobs):  # each was a real job of the cell's name, completed by the controller
        state = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", job], capture_output=True, text=True, env={**os.environ, **slurm}
        ).stdout
        assert f"JobName=bm-{row['config_hash']}-r{row['repeat']}" in state and "JobState=COMPLETED" in state
    results = cli("results", "--store", str(tmp_path / "results.db"))
    assert results.returncode == 0 and "Training speed" in results.stdout and "slurm job" in results.stdout
    print(f"slurm matrix: 4 cells in {wall:.1f} s wall (--pack: two 1-CPU jobs at a time on this node)")


def test_cancelled_jobs_are_interrupted_cells_and_resume_runs_them_locally(
    slurm, engine, built_images, sample_data, tmp_path, cli
):
    spec = write_spec(tmp_path / "spec.yaml", SLOW_CNN, repeats=2)
    args = run_args(spec, tmp_path, sample_data, "--backend", "slurm", "--cpus-per-cell", "1")  # node exclusive
    orchestrator = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO,
        env={**os.environ, **slurm},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run_id = wait_for_running_cell(engine, slurm)
        jobs = [line.split("|")[0] for line in squeue(slurm, "--format=%i|%k").splitlines() if run_id in line]
        assert len(jobs) == 2  # one running, one pending (each job has the node to itself)
        subprocess.run(["scancel", *jobs], check=True, env={**os.environ, **slurm})
        output, _ = orchestrator.communicate(timeout=180)
    finally:
        orchestrator.kill()
    assert orchestrator.returncode == ExitCode.CELLS_FAILED, output[-4000:]
    store = Store(str(tmp_path / "results.db"))
    rows = store.cell_rows(run_id)
    assert [row["status"] for row in rows] == ["interrupted", "interrupted"], output[-3000:]
    assert all(any(note.endswith(": CANCELLED") for note in row["notes"]) for row in rows)
    assert engine.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}) == []

    resumed = cli(*run_args(spec, tmp_path, sample_data, "--resume", run_id, "--backend", "local"))
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-4000:]
    rows = store.cell_rows(run_id)
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert not any(slurm_job_ids(row["notes"]) for row in rows)  # this time run by the local backend


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
        dead = tmp_path / env["SLURM_CONF"]
        dead.write_text(DEAD_CLUSTER)
        monkeypatch.setenv("SLURM_CONF", str(dead))
    spec = write_spec(tmp_path / "spec.yaml", MLP, repeats=1)
    done = in_process(capsys, *run_args(spec, tmp_path, sample_data, "--backend", "slurm", *extra))
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert expected in done.stderr
    assert not (tmp_path / "results" / "runs").exists()
    assert not (tmp_path / "results.db").exists() or Store(str(tmp_path / "results.db")).run_ids() == []
