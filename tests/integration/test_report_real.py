"""`report` and the exports on a real run: repeats of a real cell plus one that fails."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

from orchestrator.errors import ExitCode
from orchestrator.render import report
from orchestrator.store.database import Store
from tests.integration.test_matrix import write_spec
from workloads.ops import DEFAULT_SIZES, OPERATIONS

WORKLOADS = (
    "  - {name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 640, warmup_steps: 5}\n"
    "  - {name: tooshort, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 16, warmup_steps: 5}\n"
    "  - {name: ops, model: ops, dataset: none, batch_sizes: [1], warmup_steps: 0}"
)


@pytest.fixture(scope="module")
def real_run(built_images, sample_data, tmp_path_factory, cli):
    work = tmp_path_factory.mktemp("report")
    spec = write_spec(work / "spec.yaml", '  - {name: mxnet, version: "1.9.1"}', WORKLOADS)
    store = str(work / "results.db")
    done = cli(
        "run",
        "--spec",
        str(spec),
        "--repeats",
        "3",
        "--data-dir",
        str(sample_data),
        "--results-dir",
        str(work / "r"),
        "--store",
        store,
    )
    # the tooshort cells fail
    assert done.returncode == ExitCode.CELLS_FAILED, done.stdout[-3000:] + done.stderr[-3000:]
    return store, work


def test_report_of_a_real_run(real_run, cli):
    store, work = real_run
    done = cli("report", "--store", store, "--last", "--out", str(work / "out"))
    assert done.returncode == 0, done.stderr
    page = (work / "out" / "index.html").read_text()
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) >= 2 and all(base64.b64decode(data)[:4] == b"\x89PNG" for data in images)
    summary = (work / "out" / "summary.md").read_text()
    assert "| cpu | mlp | 32 | 1 | mxnet | 3 / 3 |" in summary  # three ok repeats with their CV
    assert "| cpu | tooshort | 32 | 0 | Error |" in summary  # the failed cell shows its status in Table 4
    # The cell read the sample's PROVENANCE.json through the read-only mount and vouched for it.
    assert "- **data**: fashion_mnist, generated (seed 0, n 1,200): accuracy meaningless" in summary
    assert "- **mxnet in the container**: mxnet 1.9.1" in summary
    # Its last log line, in the table of cells that did not end ok, says why (the workload's own words).
    failed = "| Error | cpu | mxnet | tooshort | 32 | 0 | 2 | error: 16 training samples make no full step of 32"
    assert failed in summary
    assert (work / "out" / "throughput.png").stat().st_size > 10_000


def test_operations_of_a_real_ops_cell_reach_the_report(real_run, cli):
    """The names the workload stores are the names the report reads: a table of every (op, size), a figure."""
    store, work = real_run
    db = Store(store)
    rows = db.cell_rows(db.resolve_run("last"))
    table = report.ops_table(report.cell_frame(rows))
    assert {(op, size) for op, size in zip(table["op"], table["size"])} == {
        (op, size) for op in OPERATIONS for size in DEFAULT_SIZES
    }
    assert (table["median"] > 0).all() and set(table["label"]) == {"mxnet"}
    done = cli("report", "--store", store, "--last", "--out", str(work / "ops"))
    assert done.returncode == 0, done.stderr
    assert (work / "ops" / "ops.png").read_bytes()[:4] == b"\x89PNG"
    assert "- `ops.png`:" in (work / "ops" / "summary.md").read_text()


def test_parquet_export_carries_run_host_image_and_versions(real_run, cli):
    store, work = real_run
    target = work / "cells.parquet"
    done = cli("results", "--store", store, "--format", "parquet", "--out", str(target))
    assert done.returncode == 0, done.stderr
    frame = pd.read_parquet(target)
    ok = frame[frame["status"] == "ok"]
    assert len(frame) == 9 and len(ok) == 6  # mlp and ops ok, tooshort not
    assert set(ok["versions.mxnet"]) == {"1.9.1"} and ok["image_id"].str.startswith("sha256:").all()
    assert frame["run_id"].nunique() == 1 and frame["host"].notna().all()
    assert frame.loc[frame["status"] == "error", "train_img_per_s"].isna().all()
    trained = ok[ok["workload"] == "mlp"]  # the ops cells read no dataset: no provenance
    assert set(trained["data_provenance.kind"]) == {"generated"} and not trained["accuracy_meaningful"].any()
    assert ok.loc[ok["workload"] == "ops", "data_provenance.kind"].isna().all()
