"""The foundation end to end on the real engine: spec → images → containers → store → table."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from orchestrator.errors import ExitCode
from orchestrator.store.database import Store

MODELS_PARAMS = {"mlp": 101_770, "cnn": 203_434}


def write_spec(path: Path, frameworks: str, workloads: str) -> Path:
    path.write_text(
        "name: ci\nrepeats: 1\n"
        "systems: {cpu: {kind: cpu, memory: 4g}}\n"
        f"frameworks:\n{frameworks}\nworkloads:\n{workloads}\n"
    )
    return path


FIVE = "\n".join(
    f'  - {{name: {name}, version: "{version}"}}'
    for name, version in (
        f.split("@")
        for f in ("tensorflow@2.21.0", "pytorch@2.13.0", "mxnet@1.9.1", "keras-mxnet@2.2.4.3", "jax@0.10.2")
    )
)
TINY = (
    "  - {name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 960, warmup_steps: 5}\n"
    "  - {name: cnn, model: cnn, dataset: fashion_mnist, batch_sizes: [32], max_samples: 480, warmup_steps: 5}"
)


@pytest.fixture(scope="module")
def matrix_run(built_images, sample_data, tmp_path_factory, cli):
    """The five frameworks × {mlp, cnn}, run once for the tests below."""
    work = tmp_path_factory.mktemp("matrix")
    spec = write_spec(work / "spec.yaml", FIVE, TINY)
    store = work / "results.db"
    done = cli(
        "run",
        "--system",
        "cpu",
        "--spec",
        str(spec),
        "--data-dir",
        str(sample_data),
        "--results-dir",
        str(work / "results"),
        "--store",
        str(store),
    )
    return done, Store(str(store)), work


def test_every_cell_ok_and_table_printed(matrix_run):
    done, store, _ = matrix_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = store.cell_rows(store.resolve_run("last"))
    assert len(rows) == 10
    assert {row.status for row in rows} == {"ok"}, [(r.framework, r.log_tail) for r in rows]
    assert all(row.metrics["train_img_per_s"] > 0 for row in rows)
    for column in (
        "tensorflow (img/s)",
        "pytorch (img/s)",
        "mxnet (img/s)",
        "keras-mxnet (img/s)",
        "jax (img/s)",
        "pytorch / tensorflow",
    ):
        assert column in done.stdout
    assert "mlp: capped at 960 training samples per epoch" in done.stdout
    assert "data: fashion_mnist, generated (seed 0, n 1,200): accuracy meaningless" in done.stdout
    assert re.search(r"version in the container: tensorflow = .*tensorflow 2\.21\.0", done.stdout)
    assert {row.data_provenance["kind"] for row in rows} == {"generated"}
    # Captured stdout is no terminal (as a CI log): each cell says when it started and how long it took.
    assert len(re.findall(r"^\[\d\d:\d\d:\d\d\] cell .+: started$", done.stdout, re.MULTILINE)) == 10
    assert len(re.findall(r"^\[\d\d:\d\d:\d\d\] cell .+: done in \d", done.stdout, re.MULTILINE)) == 10


def test_parameter_counts_equal_across_frameworks(matrix_run):
    _, store, _ = matrix_run
    for row in store.cell_rows(store.resolve_run("last")):
        assert row.metrics["params"] == MODELS_PARAMS[row.model], row.framework


def test_versions_seen_inside_the_container_are_stored(matrix_run):
    _, store, _ = matrix_run
    versions = {row.framework: row.versions for row in store.cell_rows(store.resolve_run("last"))}
    assert versions["mxnet"]["mxnet"] == "1.9.1"
    assert versions["tensorflow"]["tensorflow"] == "2.21.0"
    assert versions["pytorch"]["torch"].startswith("2.13.0")
    assert versions["jax"]["jax"] == "0.10.2"
    assert versions["keras-mxnet"]["keras"] == "2.2.4.3"


def test_results_exports(matrix_run, cli):
    _, _, work = matrix_run
    store = str(work / "results.db")
    as_json = json.loads(cli("results", "--store", store, "--format", "json").stdout)
    assert len(as_json) == 10 and all(row["image_id"].startswith("sha256:") for row in as_json)
    as_csv = list(csv.DictReader(io.StringIO(cli("results", "--store", store, "--format", "csv").stdout)))
    assert {row["framework"] for row in as_csv} == {"tensorflow", "pytorch", "mxnet", "keras-mxnet", "jax"}
    table = cli("results", "--store", store)
    assert table.returncode == 0 and "Training speed" in table.stdout


def test_cell_logs_and_results_are_kept(matrix_run):
    _, store, _ = matrix_run
    for row in store.cell_rows(store.resolve_run("last")):
        assert Path(row.log_path).is_file()
        assert json.loads(Path(row.result_path).read_text())["schema"] == "benchmatrix.result/1"


def test_failing_cell_is_stored_as_error_and_the_matrix_goes_on(built_images, sample_data, tmp_path, cli):
    workloads = (
        "  - {name: tooshort, model: mlp, dataset: fashion_mnist, batch_sizes: [32],"
        " max_samples: 16, warmup_steps: 5}\n"
        "  - {name: fine, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 640, warmup_steps: 5}"
    )
    spec = write_spec(tmp_path / "spec.yaml", '  - {name: mxnet, version: "1.9.1"}', workloads)
    store = tmp_path / "results.db"
    done = cli(
        "run",
        "--spec",
        str(spec),
        "--data-dir",
        str(sample_data),
        "--results-dir",
        str(tmp_path / "r"),
        "--store",
        str(store),
    )
    assert done.returncode == ExitCode.CELLS_FAILED, done.stdout + done.stderr
    rows = {row.workload: row for row in Store(str(store)).cell_rows(Store(str(store)).resolve_run("last"))}
    assert rows["tooshort"].status == "error" and rows["tooshort"].metrics == {}
    assert "16 training samples make no full step of 32 samples" in rows["tooshort"].log_tail
    assert rows["fine"].status == "ok"
    assert "Error" in done.stdout
