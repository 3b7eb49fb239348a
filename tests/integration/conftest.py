"""Real-engine fixtures: one engine, images built once per session through the CLI, tiny datasets."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import pytest

from orchestrator.backends.engine import (
    CELL_LABEL,
    RUN_LABEL,
    CellContainer,
    ContainerExit,
    ContainerSpec,
    Mount,
    connect,
)
from orchestrator.backends.local import WORKLOADS_DIR
from orchestrator.errors import EngineUnavailable
from orchestrator.images import base
from orchestrator.run import data
from orchestrator.store.database import Store
from orchestrator.store.rows import CellRow
from tests.conftest import run_cli

FRAMEWORKS = ("tensorflow@2.21.0", "pytorch@2.13.0", "mxnet@1.9.1", "keras-mxnet@2.2.4.3", "jax@0.10.2")


def pytest_collection_modifyitems(items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    """The engine, with the offline bases every image and test image starts from (bootstrapped if missing)."""
    try:
        client = connect()
    except EngineUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-engine tests: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
    for suite in ("bookworm", "bullseye"):
        base.bootstrap(client, suite)
    return client


@pytest.fixture(scope="session")
def built_images(engine) -> dict[str, str]:
    """Every default framework's CPU image, built (or found current) through `images build`."""
    args = ["images", "build", "--variant", "cpu"]
    for framework in FRAMEWORKS:
        args += ["--framework", framework]
    done = run_cli(*args, timeout=3000)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {tag.split(" ")[0]: tag for tag in done.stdout.split("\n") if tag}


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    data.sample("fashion_mnist", root / "fashion_mnist", n_train=1200, n_test=300)
    for path in (root, root / "fashion_mnist"):
        path.chmod(0o755)
    return root


@pytest.fixture(scope="session")
def suite_data(sample_data) -> Path:
    """`sample_data` plus a small sample of every other file dataset (MNIST, CIFAR-10, a JPEG folder)."""
    for name, n_train in (("mnist", 400), ("cifar10", 200), ("imagenet", 40)):
        data.sample(name, sample_data / name, n_train=n_train, n_test=max(4, n_train // 10))
        (sample_data / name).chmod(0o755)
    return sample_data


def run_workloads(
    engine: docker.DockerClient,
    image: str,
    command: list[str],
    data_dir: Path,
    results: Path,
    label: tuple[str, str],
    environment: dict[str, str] | None = None,
    memory: str = "4g",
    timeout_s: float = 600,
) -> ContainerExit:
    """`python -m workloads ...` in a hardened cell container of `image`, data at /data and results
    at /results (writable), as the local backend runs a cell."""
    spec = ContainerSpec(
        image=image,
        command=["python3", "-m", "workloads", *command],
        mounts=[
            Mount(data_dir, "/data"),
            Mount(WORKLOADS_DIR, "/opt/benchmatrix/workloads"),
            Mount(results, "/results", read_only=False),
        ],
        labels={RUN_LABEL: label[0], CELL_LABEL: label[1]},
        environment={"PYTHONPATH": "/opt/benchmatrix", **(environment or {})},
        memory=memory,
    )
    with CellContainer(engine, spec) as container:
        return container.run(timeout_s=timeout_s)


def run_spec(cli, work: Path, spec_text: str, data_dir: Path) -> list[CellRow]:
    """`run` a spec written into `work` with its own store and results folder; the run's cell rows."""
    spec = work / "spec.yaml"
    spec.write_text(spec_text)
    store = work / "results.db"
    args = ["--data-dir", str(data_dir), "--results-dir", str(work / "results"), "--store", str(store)]
    done = cli("run", "--spec", str(spec), *args)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    db = Store(str(store))
    return db.cell_rows(db.resolve_run("last"))
