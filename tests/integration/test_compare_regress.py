"""`regress` end to end between two real catalog builds of MXNet of different variants
(1.9.1 cpu vs 1.6.0 mkl): images built, A B rounds run, cells paired, verdict and exit code."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.store import Store
from tests.integration.test_matrix import write_spec

WORKLOAD = "  - {name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 640, warmup_steps: 5}"


def test_regress_between_two_mxnet_builds(engine, sample_data, tmp_path, cli):
    spec = write_spec(
        tmp_path / "regress.yaml", '  - {name: mxnet, version: "1.9.1", options: {hybridize: true}}', WORKLOAD
    )
    store = str(tmp_path / "results.db")
    done = cli(
        "regress",
        "--baseline",
        "mxnet@1.9.1",
        "--candidate",
        "mxnet@1.6.0-mkl",
        "--spec",
        str(spec),
        "--repeats",
        "2",
        "--store",
        store,
        "--data-dir",
        str(sample_data),
        "--results-dir",
        str(tmp_path / "r"),
        "--junit",
        str(tmp_path / "junit.xml"),
        "--markdown",
        str(tmp_path / "compare.md"),
        timeout=2400,
    )
    # Two rounds cannot reach a verdict: the run says so and does not fail.
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "too few repeats for a verdict (2 vs 2 ok)" in (tmp_path / "compare.md").read_text()
    case = ET.parse(tmp_path / "junit.xml").getroot().find("testcase")
    assert case.get("name") == "cpu/mxnet/mlp/bs32/e1/hybridize=True" and case.find("skipped") is not None
    opened = Store(store)
    runs = opened.run_ids()
    assert len(runs) == 2
    for run_id in runs:  # each round ran A then B
        rows = opened.cell_rows(run_id)
        assert [(r["version"], r["variant"], r["status"]) for r in rows] == [
            ("1.9.1", "cpu", "ok"),
            ("1.6.0", "mkl", "ok"),
        ]
        assert rows[1]["versions"]["mxnet"] == "1.6.0"


def test_regress_refuses_run_ids_and_identical_builds(tmp_path, cli):
    store = str(tmp_path / "results.db")
    same = cli("regress", "--baseline", "mxnet@1.9.1", "--candidate", "mxnet@1.9.1", "--store", store)
    assert same.returncode == 2 and "the same build" in same.stderr
    run_id = cli("regress", "--baseline", "20261122-231006-f60c6c", "--candidate", "mxnet@1.9.1", "--store", store)
    assert run_id.returncode == 2 and "needs framework@version" in run_id.stderr
