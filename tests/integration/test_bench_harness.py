"""bench/harness.py in the framework images: every command line docs/measurement.md documents runs as written
(with tiny sizes appended: argparse keeps the last value), and the bare reference sees a host copy."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from orchestrator.backends.engine import Mount
from tests.integration.test_timing_spies import IMAGES, run_hardened

REPO = Path(__file__).resolve().parents[2]
TINY = "--samples 64 --epochs 1 --rounds 1 --warmup-steps 1 --batch-size 16"


def documented_commands() -> list[str]:
    """The code spans of docs/measurement.md that run bench.harness or bench/harness_cpu.sh, whitespace folded."""
    spans = re.findall(r"`([^`]*bench[./]harness[^`]*)`", (REPO / "docs" / "measurement.md").read_text())
    commands = [" ".join(span.split()) for span in spans]
    return [c for c in commands if c.startswith(("python3 -m bench.harness", "bash bench/harness_cpu.sh"))]


def in_image(engine, image: str, command: str) -> str:
    """``command`` run from the checkout's root in a hardened container of ``image``; its output."""
    mounts = [Mount(REPO / folder, f"/opt/benchmatrix/{folder}") for folder in ("bench", "workloads")]
    return run_hardened(engine, image, ["bash", "-c", f"cd /opt/benchmatrix && {command}"], mounts, image)


def ratio(output: str, framework: str, where: str = "device") -> float:
    """harness ÷ bare from the harness's row for ``framework`` with ``where`` input."""
    (row,) = [
        cells
        for cells in (line.split() for line in output.splitlines())
        if cells[:1] + cells[2:3] == [framework, where]
    ]
    return float(row[6])


def test_the_docs_document_the_gpu_and_the_cpu_commands():
    commands = documented_commands()
    assert any("--model resnet50" in c for c in commands) and "bash bench/harness_cpu.sh" in commands


@pytest.mark.parametrize("command", [c for c in documented_commands() if c.startswith("python3 -m bench.harness")])
def test_each_documented_harness_command_runs(engine, built_images, command):
    output = in_image(engine, IMAGES["pytorch"], f"{command} {TINY}")
    assert ratio(output, "pytorch") > 0


def test_the_cpu_script_runs_every_framework(engine, built_images):
    (command,) = [c for c in documented_commands() if c == "bash bench/harness_cpu.sh"]
    done = subprocess.run(
        [*shlex.split(command), *TINY.split()], cwd=REPO, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "CPUSET": "0-1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for framework in IMAGES:
        for model in ("mlp", "cnn"):
            assert any(line.split()[:2] == [framework, model] for line in done.stdout.splitlines()), done.stdout


def test_a_hidden_host_copy_on_the_harness_side_shows_in_the_ratio(engine, built_images):
    run = "python3 -m bench.harness --framework jax --model mlp --samples 8192 --epochs 1 --input device"
    plain = ratio(in_image(engine, IMAGES["jax"], f"{run} --rounds 3"), "jax")
    copied = ratio(in_image(engine, IMAGES["jax"], f"{run} --rounds 3 --hidden-host-copy"), "jax")
    print(f"jax mlp harness/bare: {plain:.3f} resident, {copied:.3f} with a hidden host copy")
    assert copied < 0.9 and copied < plain, (plain, copied)
