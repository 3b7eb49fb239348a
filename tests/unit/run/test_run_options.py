"""`run`'s fault and scheduling options refuse bad input before anything starts: exit 2, a clear message.

Most checks call `run_matrix` in-process with no engine reachable (the refusals come first and are
UsageErrors, exit code 2); one goes through the CLI end to end.
"""

from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path
from typing import Optional

import pytest
from rich.console import Console

from orchestrator.backends.engine import owner_id
from orchestrator.backends.monitor import host_gpu_ids
from orchestrator.errors import ExitCode, UsageError
from orchestrator.run import data
from orchestrator.run.plan import Filters
from orchestrator.run.runner import OWNER_KEY, RunRequest, run_matrix
from orchestrator.spec.matrix import spec_hash
from orchestrator.store.database import Store, runs
from tests.stores import add_run

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent.sock"}
SPEC = (
    'name: s\nsystems: {cpu: {kind: cpu}, 1_gpu: {kind: gpu, gpus: 1}}\nframeworks: [{name: mxnet, version: "1.9.1"}]\n'
    "workloads: [{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32]}]\n"
)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE["DOCKER_HOST"])
    data.sample("fashion_mnist", tmp_path / "fashion_mnist", n_train=100, n_test=20)
    tmp_path.chmod(0o755)
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    return tmp_path, spec


def refused(tmp_path: Path, spec: Path, system: Optional[str] = None, **options) -> str:
    request = RunRequest(
        spec_path=spec,
        filters=Filters(system=system),
        repeats=None,
        store=str(tmp_path / "r.db"),
        data_dir=tmp_path,
        results_dir=tmp_path / "results",
        **options,
    )
    with pytest.raises(UsageError) as caught:
        run_matrix(request, Console(file=io.StringIO()))
    assert caught.value.exit_code == ExitCode.USAGE
    return str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout_s": 0}, "--timeout must be a positive number of seconds, got 0"),
        ({"sample_hz": -1}, "--sample-hz must be in [0, 100] (0: no monitoring), got -1"),
        ({"pack": True, "cpus_per_cell": 0}, "--cpus-per-cell must be at least 1, got 0"),
    ],
)
def test_bad_option_values_are_refused(setup, options, message):
    tmp_path, spec = setup
    assert message in refused(tmp_path, spec, **options)
    assert not (tmp_path / "r.db").exists()


def test_gpu_system_without_a_driver_is_refused_with_the_way_to_check(setup, cli):
    if host_gpu_ids()[0]:
        pytest.skip("this host has GPUs")
    tmp_path, spec = setup
    done = cli("run", "--spec", str(spec), "--data-dir", str(tmp_path), "--system", "1_gpu", env=NO_ENGINE)
    assert done.returncode == 2
    assert "system 1_gpu needs GPUs, but NVML unavailable" in done.stderr and "doctor" in done.stderr


def stored_run(tmp_path: Path, spec: Path) -> Store:
    store = Store(str(tmp_path / "r.db"))
    add_run(
        store,
        "r1",
        spec_path=str(spec),
        spec_hash=spec_hash(spec),
        reference="mxnet",
        command='["orchestrator", "run"]',
    )
    return store


def test_resume_of_an_unknown_run_is_refused(setup):
    tmp_path, spec = setup
    stored_run(tmp_path, spec)
    assert "no run 'nope' in the store" in refused(tmp_path, spec, resume="nope")


def test_resume_with_a_changed_spec_is_refused_and_the_run_left_alone(setup):
    tmp_path, spec = setup
    store = stored_run(tmp_path, spec)
    spec.write_text(SPEC.replace("batch_sizes: [32]", "batch_sizes: [64]"))
    message = refused(tmp_path, spec, resume="last")
    assert "--resume r1: that run was made from" in message and "resume with the same spec" in message
    assert store.run_row("r1").status == "running"


def test_resume_of_another_system_is_refused(setup):
    tmp_path, spec = setup
    stored_run(tmp_path, spec)
    assert "that run is of system cpu, not 1_gpu" in refused(tmp_path, spec, system="1_gpu", resume="r1")


def test_resume_of_a_run_whose_orchestrator_lives_is_refused_naming_it(setup, cli):
    """The owner is this test's own process (alive); through the CLI: exit 2, the owner named, nothing changed."""
    tmp_path, spec = setup
    store = stored_run(tmp_path, spec)
    with store.engine.begin() as conn:  # as `run` records its orchestrator
        conn.execute(runs.update().values(host=json.dumps({"hostname": "h", OWNER_KEY: owner_id()})))
    done = cli("run", "--spec", str(spec), "--data-dir", str(tmp_path), "--store", str(tmp_path / "r.db"),
               "--resume", "last", env=NO_ENGINE)  # fmt: skip
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert f"--resume r1: its orchestrator {owner_id()} (host/pid/start time) is still running it" in done.stderr
    assert "Traceback" not in done.stderr and store.run_row("r1").status == "running"


def test_resume_of_a_run_whose_orchestrator_is_gone_goes_on(setup):
    """A dead owner (a pid that is not running with that start time) does not block: the next refusal is the engine."""
    tmp_path, spec = setup
    store = stored_run(tmp_path, spec)
    gone = f"{socket.gethostname()}/{os.getpid()}/0"  # this pid, another start time: another process
    with store.engine.begin() as conn:
        conn.execute(runs.update().values(host=json.dumps({OWNER_KEY: gone})))
    assert "no Docker engine answers" in refused(tmp_path, spec, resume="r1")
