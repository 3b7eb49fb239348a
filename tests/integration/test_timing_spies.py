"""Every real training loop synchronises once per window and at epoch edges, nowhere else: a spy
(sync_spy.py) counts the waits of each adapter's loop in its own image, hardened like a cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.backends.engine import CELL_LABEL, RUN_LABEL, CellContainer, ContainerSpec, Mount
from orchestrator.backends.local import WORKLOADS_DIR
from tests.integration.conftest import FRAMEWORKS

SPY_DIR = Path(__file__).parent
LOOPS = ("pytorch", "mxnet", "jax", "tensorflow")  # keras-mxnet trains with fit: one window per epoch
IMAGES = {name: f"benchmatrix/{name}:{version}-cpu" for name, _, version in (f.partition("@") for f in FRAMEWORKS)}


def run_hardened(engine, image: str, command: list[str], mounts: list[Mount], label: str) -> str:
    """``command`` in a hardened cell container of ``image``; its output, after asserting it succeeded."""
    spec = ContainerSpec(
        image=image,
        command=command,
        mounts=mounts,
        labels={RUN_LABEL: "bench", CELL_LABEL: label},
        environment={"PYTHONPATH": "/opt/benchmatrix", "HOME": "/tmp"},
        memory="4g",
    )
    with CellContainer(engine, spec) as container:
        done = container.run(timeout_s=900)
    assert done.exit_code == 0, done.logs[-3000:]
    return done.logs


@pytest.mark.parametrize("framework", LOOPS)
def test_one_synchronisation_per_window_and_per_epoch_start(engine, built_images, framework):
    mounts = [Mount(WORKLOADS_DIR, "/opt/benchmatrix/workloads"), Mount(SPY_DIR, "/opt/spy")]
    logs = run_hardened(engine, IMAGES[framework], ["python3", "/opt/spy/sync_spy.py", framework], mounts, framework)
    counts = json.loads(logs.strip().splitlines()[-1])
    assert counts["windows"] == [4, 4] and counts["steps"] == 2 * 13  # 13 steps an epoch: 4 + 4 + 4 + 1
    assert counts["syncs"] == 2 * (1 + 4), counts  # each epoch: before its clock, and at each window's end
    assert counts["hidden"] == [], counts
    # PyTorch on a CPU computes each step before returning: its synchronize has nothing to wait for.
    assert counts["waited"] >= (0 if framework == "pytorch" else counts["syncs"]), counts
