"""`regress` end to end between two real catalog builds of MXNet of different variants
(1.9.1 cpu vs 1.6.0 mkl): images built, rounds of alternating order run, cells paired, verdict
and exit code; and a baseline whose image does not build."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from orchestrator.errors import ExitCode
from orchestrator.store.database import Store
from tests.integration.test_matrix import write_spec

WORKLOAD = "  - {name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 640, warmup_steps: 5}"


def regress(cli, tmp_path: Path, data: Path, baseline: str, candidate: str, *extra: str, **options):
    """Two rounds of `regress` over the MLP (one look), in `tmp_path`, with a JUnit file."""
    spec = write_spec(
        tmp_path / "regress.yaml", '  - {name: mxnet, version: "1.9.1", options: {hybridize: true}}', WORKLOAD
    )
    return cli(
        *("regress", "--baseline", baseline, "--candidate", candidate, "--spec", str(spec)),
        *("--repeats", "2", "--max-repeats", "2"),
        *("--store", str(tmp_path / "results.db"), "--data-dir", str(data), "--results-dir", str(tmp_path / "r")),
        *("--junit", str(tmp_path / "junit.xml"), *extra),
        timeout=2400,
        **options,
    )


def test_regress_between_two_mxnet_builds(engine, sample_data, tmp_path, cli):
    store = str(tmp_path / "results.db")
    done = regress(
        cli, tmp_path, sample_data, "mxnet@1.9.1", "mxnet@1.6.0-mkl", "--markdown", str(tmp_path / "compare.md")
    )
    # Two rounds cannot reach a verdict: too little evidence is not a pass.
    assert done.returncode == ExitCode.INCONCLUSIVE, done.stdout[-4000:] + done.stderr[-4000:]
    markdown = (tmp_path / "compare.md").read_text()
    assert markdown.startswith("## INCONCLUSIVE")
    assert "inconclusive: 2 rounds (1 pair) cannot give a p below 0.5; a regression needs" in markdown
    assert "rounds can reach both" in markdown
    assert "2 rounds, order alternating (A B, B A, …); stopped after 2" in markdown
    case = ET.parse(tmp_path / "junit.xml").getroot().find("testcase")
    assert case.get("name") == "cpu/mxnet/mlp/bs32/e1/hybridize=True" and case.find("error") is not None
    opened = Store(store)
    runs = opened.run_ids()
    assert len(runs) == 2
    orders = [[(r.version, r.variant, r.status) for r in opened.cell_rows(run_id)] for run_id in runs]
    assert orders == [  # the cells are stored in the order they ran: A B, then B A
        [("1.9.1", "cpu", "ok"), ("1.6.0", "mkl", "ok")],
        [("1.6.0", "mkl", "ok"), ("1.9.1", "cpu", "ok")],
    ]
    assert opened.cell_rows(runs[0])[1].versions["mxnet"] == "1.6.0"


BROKEN_ENTRY = """
  - framework: mxnet
    version: "0.0.1"
    variant: cpu
    base: bullseye
    pip: ["benchmatrix-no-such-package==0.0.1"]
    description: Fails to build, on purpose (pip finds no such package, online or off).
"""


def test_regress_whose_baseline_does_not_build_fails_with_its_code(engine, sample_data, tmp_path, cli):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text((Path(__file__).resolve().parents[2] / "images" / "catalog.yaml").read_text() + BROKEN_ENTRY)
    store = str(tmp_path / "results.db")
    done = regress(cli, tmp_path, sample_data, "mxnet@0.0.1", "mxnet@1.9.1", env={"BENCHMATRIX_CATALOG": str(catalog)})
    assert done.returncode == ExitCode.BUILD_FAILED, done.stdout[-4000:] + done.stderr[-4000:]
    assert "baseline mxnet@0.0.1 is broken: building benchmatrix/mxnet:0.0.1-cpu failed" in done.stderr
    assert "fixed" not in done.stdout + done.stderr
    error = ET.parse(tmp_path / "junit.xml").getroot().find("testcase/error")
    assert error.get("message") == "build failed"
    assert Store(store).run_ids() == []  # nothing ran: the images are built before the first round


def test_regress_refuses_run_ids_and_identical_builds(tmp_path, cli):
    store = str(tmp_path / "results.db")
    same = cli("regress", "--baseline", "mxnet@1.9.1", "--candidate", "mxnet@1.9.1", "--store", store)
    assert same.returncode == 2 and "the same build" in same.stderr
    run_id = cli("regress", "--baseline", "20261122-231006-f60c6c", "--candidate", "mxnet@1.9.1", "--store", store)
    assert run_id.returncode == 2 and "needs framework@version" in run_id.stderr
