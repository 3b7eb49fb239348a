"""`doctor` on this host's real engine: what it finds, and which findings block which systems."""

from __future__ import annotations

import re
import shutil

import pytest

from orchestrator.backends import hostinfo
from orchestrator.errors import ExitCode


def test_doctor_passes_for_cpu_and_says_whether_a_gpu_runtime_is_present(engine, cli, tmp_path):
    done = cli("doctor", "--store", str(tmp_path / "r.db"), "--results-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Docker" in done.stdout and "ready for cpu runs" in done.stdout
    assert "cell init" in done.stdout and "store" in done.stdout and "GiB free" in done.stdout
    for check in ("cpu governor", "turbo boost", "smt", "cpus", "other work", "memory"):  # warnings, never blocks
        assert re.search(rf"^(ok  |warn) {check} ", done.stdout, flags=re.MULTILINE), done.stdout
    if not shutil.which("nvidia-container-runtime-hook") and "nvidia" not in engine.info().get("Runtimes", {}):
        assert "no NVIDIA GPU runtime" in done.stdout and "CPU systems are unaffected" in done.stdout
    assert not (tmp_path / "r.db").exists()  # the check does not create the store


def test_doctor_blocks_a_gpu_system_on_a_host_without_gpus(engine, cli, tmp_path):
    if hostinfo.gpus():
        pytest.skip("this host has GPUs")
    done = cli("doctor", "--system", "4_gpu", "--store", str(tmp_path / "r.db"))
    assert done.returncode == ExitCode.DOCTOR_FAILED
    assert "FAIL gpus" in done.stdout and "install the NVIDIA driver" in done.stdout
    assert "block a gpu run" in done.stderr
