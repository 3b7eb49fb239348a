"""The metric registry and the cell status enum: the one place units, directions and status texts live."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orchestrator.backends.monitor import ContainerSample, GpuSample, window_metrics
from orchestrator.metrics import METRICS, RESULT_METRICS, SPEED_METRICS, Direction, measured
from orchestrator.render import markdown
from orchestrator.run.result import metrics_from
from orchestrator.status import CellStatus
from orchestrator.store.database import Store, cells
from tests.results import result
from tests.stores import add_run, cell


def test_a_result_s_metrics_carry_the_registry_unit():
    document = result(**{info.result_key: 1.5 for info in RESULT_METRICS}, epoch_seconds=[2.0, 3.0])
    found = metrics_from(document)
    assert len(found) == len(RESULT_METRICS) + 2  # and the epoch median, the timing flag
    assert all(metric.unit == METRICS[metric.name].unit for metric in found)


def test_the_monitor_s_summaries_carry_the_registry_unit():
    gpu = [GpuSample(t, 0, 50.0, 900.0, 120.0, 1400.0, 60.0, unix_s=t) for t in (1.0, 2.0)]
    container = [ContainerSample(t, 80.0, 300.0, unix_s=t) for t in (1.0, 2.0)]
    found = window_metrics(gpu, container, None)[0]
    assert len(found) == 7 * 3  # 5 GPU and 2 container fields, each mean, p95, max
    assert all(metric.unit == METRICS[metric.name].unit for metric in found)


def test_the_gate_judges_only_speed_metrics_that_have_a_better_direction():
    assert SPEED_METRICS == (
        "train_img_per_s",
        "inference_img_per_s",
        "train_seconds",
        "epoch_seconds_median",
        "step_seconds_median",
    )
    assert all(METRICS[name].direction is not Direction.NEITHER for name in SPEED_METRICS)
    assert METRICS["train_img_per_s"].direction is Direction.HIGHER
    assert METRICS["train_seconds"].direction is Direction.LOWER


def test_an_unregistered_metric_name_is_a_key_error_not_a_silent_unit():
    with pytest.raises(KeyError):
        measured("train_img_per_sec", 1.0)


def test_a_status_is_stored_as_its_text_and_read_back_as_the_enum(tmp_path):
    store = add_run(Store(str(tmp_path / "s.db")))
    store.record_cell(cell(status=CellStatus.OOM, exit_code=137))
    with store.engine.connect() as conn:
        assert conn.execute(select(cells.c.status)).scalar() == "oom"
    assert store.cell_rows("run1")[0].status is CellStatus.OOM


def test_status_texts_are_what_the_tables_show():
    assert [status.text for status in CellStatus] == [
        "ok",
        "Out of Memory",
        "Timeout",
        "Error",
        "Interrupted",
        "Retryable",
    ]


def test_the_shared_markdown_table_escapes_a_pipe_inside_a_cell():
    assert markdown.table(["a", "b"], [["x|y", "z"]]) == "| a | b |\n|---|---|\n| x\\|y | z |"
