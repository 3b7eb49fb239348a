"""Store round trip (SQLite, transactional cells) and the seed Table 4 shape (golden)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import cells
from orchestrator.errors import BenchmatrixError, UsageError
from orchestrator.metrics import Metric
from orchestrator.render.table import speed_table
from orchestrator.store.database import Store
from tests.stores import add_run
from workloads.contract import suspect_note

GOLDEN = Path(__file__).parent.parent / "golden"
T0 = datetime(2026, 11, 22, tzinfo=UTC)


def record(run_id: str, framework: str, workload: str, status: str, speed: float | None, repeat: int = 0, **extra):
    return cells.of_framework(
        framework,
        workload,
        run_id=run_id,
        config_hash=f"{framework}-{workload}",
        repeat=repeat,
        status=status,
        exit_code=0 if status == "ok" else 1,
        notes=extra.get("notes", []),
        metrics=[Metric("train_img_per_s", speed, "img/s")] if speed is not None else [],
    )


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "r" / "results.db"))
    add_run(store, "run1", host='{"hostname": "h"}')
    return store


def test_cells_and_metrics_round_trip(store):
    cell_id = store.record_cell(record("run1", "tensorflow", "mlp", "ok", 1000.0))
    rows = store.cell_rows("run1")
    assert [row.id for row in rows] == [cell_id]
    assert rows[0].metrics == {"train_img_per_s": 1000.0}
    assert rows[0].versions == {"tensorflow": "1"}
    assert store.resolve_run("last") == "run1"


def test_duplicate_cell_identity_is_refused_whole_with_a_clear_error(store):
    store.record_cell(record("run1", "tensorflow", "mlp", "ok", 1000.0))
    with pytest.raises(BenchmatrixError, match=r"store sqlite:///.*results.db: record_cell refused, .*already stored"):
        store.record_cell(record("run1", "tensorflow", "mlp", "ok", 2000.0))
    assert len(store.cell_rows("run1")) == 1


def test_a_running_run_is_reopened_only_by_whoever_saw_its_current_owner(store):
    """`run --resume`'s claim is a compare-and-set: of two resumes that read the same row, one wins."""
    seen = store.run_row("run1").host  # 'running', as created
    assert store.reopen_run("run1", '{"orchestrator": "a/1/1"}', seen_host=seen)
    assert not store.reopen_run("run1", '{"orchestrator": "b/2/2"}', seen_host=seen)
    assert store.run_row("run1").host == '{"orchestrator": "a/1/1"}'
    store.finish_run("run1", "interrupted")
    assert store.reopen_run("run1", '{"orchestrator": "b/2/2"}', seen_host=seen)  # not running: anyone may
    assert store.run_row("run1").status == "running"


def test_failed_cell_has_status_and_no_metric(store):
    store.record_cell(record("run1", "pytorch", "cnn", "oom", None))
    row = store.cell_rows("run1")[0]
    assert row.status == "oom" and row.metrics == {}


def test_unknown_status_is_refused(store):
    with pytest.raises(ValueError, match="unknown cell status"):
        store.record_cell(record("run1", "pytorch", "cnn", "crashed", None))


def test_unknown_run_lists_newest(store):
    with pytest.raises(UsageError, match="newest runs: run1"):
        store.resolve_run("nope")


def test_speed_table_matches_golden(store):
    cap = ["first 10 steps of epoch 1 excluded", "capped at 6000 training samples per epoch"]
    store.record_cell(record("run1", "tensorflow", "mlp", "ok", 1000.0))
    store.record_cell(record("run1", "pytorch", "mlp", "ok", 1500.0))
    store.record_cell(record("run1", "mxnet", "mlp", "ok", 700.0))
    store.record_cell(record("run1", "tensorflow", "cnn", "ok", 300.0, notes=cap))
    store.record_cell(record("run1", "tensorflow", "cnn", "ok", 500.0, repeat=1, notes=cap))
    store.record_cell(record("run1", "tensorflow", "cnn", "error", None, repeat=2, notes=cap))
    store.record_cell(record("run1", "pytorch", "cnn", "oom", None, notes=cap))
    store.record_cell(record("run1", "mxnet", "cnn", "ok", 200.0, notes=cap))
    table, notes = speed_table(store.cell_rows("run1"), "tensorflow")
    assert table.to_csv(index=False) == (GOLDEN / "speed_table.csv").read_text()
    assert "cnn: capped at 6000 training samples per epoch" in notes
    assert any("speed ratio = framework img/s / tensorflow img/s" in note for note in notes)


def test_speed_table_without_reference_says_so(store):
    store.record_cell(record("run1", "pytorch", "mlp", "ok", 1500.0))
    table, notes = speed_table(store.cell_rows("run1"), "tensorflow")
    assert list(table.columns) == ["system", "workload", "batch", "n", "pytorch (img/s)"]
    assert "reference framework 'tensorflow' is not in this run: no speed ratios" in notes


def test_speed_table_says_where_input_came_from_and_which_cells_are_timing_suspect(store):
    suspect = suspect_note("epoch 1, step 101: 30 s per step, over 10× the median 0.006 s")  # as run.py writes it
    store.record_cell(record("run1", "pytorch", "mlp", "ok", 1500.0, notes=["input device (option)"]))
    flagged = record("run1", "jax", "mlp", "ok", 900.0, notes=["input host (option)", suspect])
    flagged.metrics.append(Metric("timing_suspect", 1.0, "flag"))
    store.record_cell(flagged)
    _, notes = speed_table(store.cell_rows("run1"), "pytorch")
    assert "input: device (pytorch); host (jax)" in notes
    assert (
        "TIMING-SUSPECT cpu/mlp/bs32 jax repeat 0: epoch 1, step 101: 30 s per step, over 10× the median" in (notes[-1])
    )


def test_speed_table_footnotes_name_versions_data_and_the_groups_with_few_repeats(store):
    for repeat in range(3):
        store.record_cell(record("run1", "tensorflow", "mlp", "ok", 1000.0 + repeat, repeat=repeat))
    official = {"kind": "official", "verified": {"train-images-idx3-ubyte.gz": "0" * 64}}
    store.record_cell(replace(record("run1", "mxnet", "mlp", "ok", 700.0), data_provenance=official))
    table, notes = speed_table(store.cell_rows("run1"), "tensorflow")
    assert table["n"].tolist() == ["1–3"]
    assert "n < 3 (one or two measurements, no spread): cpu/mlp/bs32 mxnet n=1" in notes
    assert "version in the container: mxnet = mxnet 1" in notes
    assert "data: fashion_mnist, official (sha256 verified: train-images-idx3-ubyte.gz)" in notes
    assert not any("not recorded" in note for note in notes)  # cells without one (failed ones) add no line
