"""`regress --bisect` on the real engine over five real MXNet releases (1.6.0 … 1.9.1), with a slowdown
injected from 1.8.0.post0 on through the workloads' test-only step delay (set in those images' env):
the search finds it building at most ⌈log2 5⌉ + 1 = 4 images, a second call re-measures nothing, the
history chart shows the step, and a stored cell is reproduced in its image (and refused once that
image's tag names another image, and once the image is gone)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker.errors
import pytest

from orchestrator.errors import ExitCode
from orchestrator.store.database import Store
from tests.conftest import REPO
from tests.integration.test_matrix import write_spec
from workloads.timing import TEST_HOOKS

VERSIONS = ["1.6.0", "1.7.0.post2", "1.8.0.post0", "1.9.0", "1.9.1"]
SLOW = {"BENCHMATRIX_TEST_HOOKS": "1", "BENCHMATRIX_TEST_STEP_DELAY_S": "0.004"}
FAMILY = f"""
  - framework: mxnet
    variant: slowtest
    base: bullseye
    versions: {VERSIONS}
    pip: ["mxnet=={{version}}", "numpy<1.24", "pillow==11.3.0"]
    apt: [libgomp1, libquadmath0, libgfortran5]
    pins: {{{", ".join(f'"{v}": {{env: {SLOW}}}' for v in VERSIONS[2:])}}}
    description: MXNet {{version}} for the bisect test; from 1.8.0.post0 on each step sleeps 4 ms (test hook).
"""
WORKLOAD = "  - {name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 640, warmup_steps: 5}"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    real = (Path(__file__).resolve().parents[2] / "images" / "catalog.yaml").read_text()
    head, tail = real.split("\nfamilies:\n", 1)
    path.write_text(f"{head}\nfamilies:\n{FAMILY.lstrip(chr(10))}{tail}")
    return path


def remove_test_images(engine) -> None:
    """This test's own tags only: each run starts from no slowtest image, so its builds can be counted."""
    for version in VERSIONS:
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(f"benchmatrix/mxnet:{version}-slowtest", force=True)


def built_by(stdout: str) -> list[str]:
    found = re.search(r"images built by this call: (.*?); state", stdout.replace("\n", " ")).group(1)
    return [] if found == "none" else found.split(", ")


def interrupt_after_two_rounds(args: tuple[str, ...], env: dict, state_dir: Path) -> list[str]:
    """Start the search, Ctrl-C it once its first step has two rounds saved; the runs it saved."""
    search = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        env={**os.environ, **env},
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 600
    runs: list[str] = []
    while len(runs) < 2 and time.monotonic() < deadline and search.poll() is None:
        time.sleep(0.2)
        for path in state_dir.glob("*.json"):
            runs = json.loads(path.read_text())["steps"].get("1.8.0.post0", {}).get("runs", [])
    search.send_signal(signal.SIGINT)
    output, _ = search.communicate(timeout=120)
    assert search.returncode == ExitCode.INTERRUPTED, output[-3000:]
    return runs[:2]


def test_bisect_finds_the_injected_slowdown_in_few_builds_and_resumes(engine, sample_data, tmp_path, cli, catalog):
    remove_test_images(engine)
    spec = write_spec(
        tmp_path / "bisect.yaml", '  - {name: mxnet, version: "1.9.1", options: {hybridize: true}}', WORKLOAD
    )
    store = tmp_path / "results.db"
    args = (
        *("regress", "--bisect", "mxnet@1.6.0-slowtest", "mxnet@1.9.1-slowtest", "--spec", str(spec)),
        *("--repeats", "16", "--max-repeats", "16", "--threshold", "0.5"),
        *("--store", str(store), "--data-dir", str(sample_data), "--results-dir", str(tmp_path / "r")),
        *("--markdown", str(tmp_path / "bisect.md")),
    )
    # A 4 ms sleep per step makes the MLP ~70 % slower; the 50 % threshold keeps the real differences between
    # releases (and this shared 2-core VM's noise, per-round CV up to ~25 %) from deciding the steps. One look
    # after 16 rounds: a step's alpha is 0.05 / 3 steps, and the signed-rank test on 8 pair-means can reach it
    # (its smallest p is 2^-8, below the 0.0083 per regression test); with 12 rounds or fewer, or an earlier look
    # spending part of it, no step could call a regression.
    env = {"BENCHMATRIX_CATALOG": str(catalog), TEST_HOOKS: "1"}  # the catalog sets the test-only delay
    started = time.perf_counter()
    first_rounds = interrupt_after_two_rounds(args, env, tmp_path / "r" / "bisect")
    done = cli(*args, env=env, timeout=2400)
    took = time.perf_counter() - started
    print(done.stdout, f"\nbisect took {took:.0f} s, interrupted once")
    assert done.returncode == ExitCode.REGRESSION, done.stdout[-4000:] + done.stderr[-4000:]
    assert "first bad version: 1.8.0.post0; last good version: 1.7.0.post2" in done.stdout
    assert "resuming from" in done.stdout
    state = json.loads(next((tmp_path / "r" / "bisect").glob("*.json")).read_text())
    assert state["steps"]["1.8.0.post0"]["runs"][:2] == first_rounds  # kept, not measured again
    built = built_by(done.stdout)
    assert "benchmatrix/mxnet:1.8.0.post0-slowtest" not in built  # built before the interrupt
    assert len(built) + 2 <= math.ceil(math.log2(len(VERSIONS))) + 1, built  # + GOOD and 1.8 of the first call
    markdown = (tmp_path / "bisect.md").read_text()
    assert "| 1.8.0.post0 | REGRESSION |" in markdown and "| 1.7.0.post2 | no regression |" in markdown
    assert "| 1.9.1 | not measured |" in markdown
    runs = Store(str(store)).run_ids()

    step_runs = [arg for run in state["steps"]["1.8.0.post0"]["runs"] for arg in ("--run", run)]
    judged = cli(
        *("compare", "--baseline", "mxnet@1.6.0-slowtest", "--candidate", "mxnet@1.8.0.post0-slowtest"),
        *(*step_runs, "--threshold", "0.5", "--store", str(store)),
    )  # the step's verdict again, at the step's stored levels (alpha / 3, one look after 16)
    assert judged.returncode == ExitCode.REGRESSION, judged.stdout[-3000:] + judged.stderr[-3000:]
    assert "looks planned after 16 rounds, alpha 0.01667" in judged.stdout.replace("\n", " ")

    again = cli(*args, env=env, timeout=600)  # a finished search: nothing built, nothing run
    assert again.returncode == ExitCode.REGRESSION and built_by(again.stdout) == []
    assert Store(str(store)).run_ids() == runs

    history = cli("report", "--history", "mxnet", "--out", str(tmp_path / "h"), "--store", str(store))
    assert history.returncode == 0, history.stderr
    assert (tmp_path / "h" / "history_mxnet_cpu_mlp.png").is_file()

    opened = Store(str(store))
    slow = next(
        r for run in runs for r in opened.cell_rows(run) if r.version == "1.8.0.post0" and r.status == "ok"
    )
    common = ("--store", str(store), "--data-dir", str(sample_data), "--results-dir", str(tmp_path / "r"))
    same = cli("reproduce", str(slow.id), *common, env=env, timeout=600)
    assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-3000:]
    print(same.stdout)
    assert (
        "against the one stored repeat" in same.stdout and "kernel" in same.stdout and "docker_version" in same.stdout
    )

    good = engine.images.get("benchmatrix/mxnet:1.6.0-slowtest")
    good.tag("benchmatrix/mxnet", "1.8.0.post0-slowtest")  # the tag now names another image
    moved = cli("reproduce", str(slow.id), *common, env=env)
    assert moved.returncode == ExitCode.NOT_REPRODUCIBLE, moved.stderr
    assert f"now names {good.id}, not the stored image {slow.image_id}" in moved.stderr
    engine.images.remove(slow.image_id, force=True)
    gone = cli("reproduce", str(slow.id), *common, env=env)
    assert gone.returncode == ExitCode.NOT_REPRODUCIBLE and f"its image {slow.image_id} is gone" in gone.stderr
    remove_test_images(engine)
