"""`doctor` without an engine: it fails, says so first, and says how to start one."""

from __future__ import annotations

from orchestrator.errors import ExitCode


def test_doctor_without_an_engine_fails_with_the_fix(cli, tmp_path):
    done = cli("doctor", "--store", str(tmp_path / "r.db"), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert done.returncode == ExitCode.DOCTOR_FAILED
    first = done.stdout.splitlines()[0]
    assert first.startswith("FAIL engine") and "no Docker engine answers" in first
    assert "dockerd" in done.stdout
    assert "problem(s) block a cpu run: engine" in done.stderr
