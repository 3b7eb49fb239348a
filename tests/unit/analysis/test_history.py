"""`report --history`: every stored measurement of a framework across versions, in release order, per
workload and system, hosts told apart; its range syntax and bad input; the report's history section."""

from __future__ import annotations

import json

import pytest

from orchestrator.analysis import history
from orchestrator.cli.main import main
from orchestrator.errors import ExitCode, UsageError
from orchestrator.metrics import Metric
from orchestrator.render import report
from orchestrator.store.database import Store
from tests.stores import add_run, cell

HOST_A = json.dumps({"hostname": "a", "cpu_model": "Xeon", "cores": 2})
HOST_B = json.dumps({"hostname": "b", "cpu_model": "EPYC", "cores": 64, "gpus": [{"name": "H100"}]})


def filled_store(tmp_path) -> Store:
    """mxnet 1.10.0, 1.9.1 and 1.6.0 (stored in that order) on host a, 1.9.1 on host b; a failed repeat."""
    store = Store(str(tmp_path / "results.db"))
    speeds = {("r1", "1.10.0"): [900, 1000, 1100], ("r2", "1.9.1"): [2000, 2100], ("r3", "1.6.0"): [3000]}
    for run_id, host in (("r1", HOST_A), ("r2", HOST_A), ("r3", HOST_A), ("r4", HOST_B)):
        add_run(store, run_id, host=host)
    for (run_id, version), values in speeds.items():
        for repeat, value in enumerate(values):
            store.record_cell(
                cell(run_id=run_id, version=version, repeat=repeat, metrics=[Metric("train_img_per_s", value, "img/s")])
            )
    store.record_cell(cell(run_id="r1", version="1.10.0", repeat=3, status="oom"))
    store.record_cell(cell(run_id="r4", version="1.9.1", metrics=[Metric("train_img_per_s", 5000, "img/s")]))
    store.record_cell(cell(run_id="r4", config_hash="tf", framework="tensorflow", version="2.21.0"))
    return store


def test_history_orders_versions_by_release_and_tells_hosts_apart(tmp_path):
    found = history.build(filled_store(tmp_path), history.parse_range("mxnet"))
    table = found.table
    assert list(table["version"].cat.categories) == ["1.6.0", "1.9.1", "1.10.0"]  # 1.10 after 1.9, not before
    host_a = table[table["series"].str.startswith("a (Xeon, 2 cores)")]
    assert [str(v) for v in host_a["version"]] == ["1.6.0", "1.9.1", "1.10.0"]
    assert host_a["median"].tolist() == [3000, 2050, 1000] and host_a["n"].tolist() == [1, 2, 3]
    newest = host_a[host_a["version"] == "1.10.0"].iloc[0]
    assert (newest["low"], newest["high"], newest["repeats"]) == (900, 1100, 4)  # the oom repeat counted, not measured
    host_b = table[table["series"].str.startswith("b (EPYC, 64 cores; H100)")]
    assert host_b["median"].tolist() == [5000]  # another machine: its own line, never averaged in
    assert [f.name for f in found.figures] == ["history_mxnet_cpu_mlp"]
    assert found.figures[0].png.startswith(b"\x89PNG")
    shown = found.display().set_index("version")
    assert shown.loc["1.10.0", "not ok"] == "Out of Memory" and shown.loc["1.10.0", "of repeats"] == 4


def test_history_tells_apart_the_machines_that_ran_the_cells_not_the_submit_host(tmp_path):
    store = Store(str(tmp_path / "results.db"))
    add_run(store, "slurm", host=json.dumps({"backend": "slurm", "submit_host": "login1"}))
    for repeat, node in enumerate(("node7", "node8")):
        host = {"hostname": node, "cpu_model": "EPYC", "cores": 64, "slurm_node": node}
        speed = [Metric("train_img_per_s", 1000 * (repeat + 1), "img/s")]
        store.record_cell(cell(run_id="slurm", version="1.9.1", repeat=repeat, host=host, metrics=speed))
    series = history.build(store, history.parse_range("mxnet")).table["series"].tolist()
    assert [label.split(" ")[0] for label in series] == ["node7", "node8"]


def test_history_range_is_inclusive_and_open_ended(tmp_path):
    store = filled_store(tmp_path)
    versions = {
        text: sorted(set(history.build(store, history.parse_range(text)).table["version"].astype(str)))
        for text in ("mxnet@1.9.1..1.10.0", "mxnet@..1.9.1", "mxnet@1.9.1..", "mxnet@1.6.0")
    }
    assert versions == {
        "mxnet@1.9.1..1.10.0": ["1.10.0", "1.9.1"],
        "mxnet@..1.9.1": ["1.6.0", "1.9.1"],
        "mxnet@1.9.1..": ["1.10.0", "1.9.1"],
        "mxnet@1.6.0": ["1.6.0"],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mxnet@", "expected FRAMEWORK, FRAMEWORK@LOW..HIGH"),
        ("MXNet", "expected FRAMEWORK"),
        ("mxnet@1.9..1.6", "1.9 comes after 1.6"),
        ("mxnet@1.0;rm..2", "expected FRAMEWORK"),
    ],
)
def test_bad_history_ranges(text, expected):
    with pytest.raises(UsageError, match=expected):
        history.parse_range(text)


def test_history_of_a_framework_or_range_the_store_lacks_exits_2(tmp_path, capsys):
    store = filled_store(tmp_path)
    out = str(tmp_path / "out")
    assert main(["report", "--history", "torch", "--out", out, "--store", store.where.removeprefix("sqlite:///")]) == 2
    assert "the store holds no cells of torch; it holds" in capsys.readouterr().err
    code = main(["report", "--history", "mxnet@2.0..3.0", "--out", out, "--store", str(tmp_path / "results.db")])
    assert code == ExitCode.USAGE
    assert "no stored version in that range; stored versions: 1.6.0, 1.9.1, 1.10.0" in capsys.readouterr().err


def test_report_history_writes_a_chart_per_workload_and_system(tmp_path, capsys):
    filled_store(tmp_path)
    out = tmp_path / "out"
    assert main(["report", "--history", "mxnet", "--out", str(out), "--store", str(tmp_path / "results.db")]) == 0
    assert (out / "history_mxnet_cpu_mlp.png").read_bytes().startswith(b"\x89PNG")
    assert "| cpu | mlp | a (Xeon, 2 cores) · cpu · bs32 | 1.6.0 | 3,000.0 |" in (out / "history.md").read_text()


def test_the_run_report_has_a_history_section_when_the_store_holds_several_versions(tmp_path):
    store = filled_store(tmp_path)
    built = report.build(store, "r1")
    assert "History: mxnet across versions (every run in the store)" in built.tables
    assert "history_mxnet_cpu_mlp" in [f.name for f in built.figures]
    assert "History: tensorflow" not in " ".join(built.tables)  # one version stored: no history to draw
    assert "History: mxnet" in report.to_html(built)


def test_a_disturbed_repeat_enters_no_median(tmp_path):
    store = filled_store(tmp_path)
    store.record_cell(
        cell(
            run_id="r3",
            version="1.6.0",
            repeat=1,
            metrics=[Metric("train_img_per_s", 300, "img/s"), Metric("disturbed", 1.0, "flag")],
        )
    )
    table = history.build(store, history.parse_range("mxnet@1.6.0")).table
    assert table["median"].tolist() == [3000] and table["n"].tolist() == [1] and table["repeats"].tolist() == [2]
