"""A disturbed cell says so everywhere a timing-suspect one does: table footnotes, report bars,
exports; `compare` leaves it out of the verdict and names it."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from orchestrator.analysis.compare import Settings, Verdict, compare
from orchestrator.metrics import DISTURBED, Metric
from orchestrator.render import report, views
from orchestrator.render.table import speed_table
from orchestrator.store.database import Store
from tests.stores import add_run
from tests.unit.analysis.test_compare import side
from tests.unit.store.test_store_and_table import record

REASON = (
    "the cell got 0.7 of 2 CPUs; 1.2 CPUs of other work on its CPUs on average over 4.0 s around the 3.1 s "
    "timed window, 1.9 at peak"
)


def disturbed_run(tmp_path) -> Store:
    store = Store(str(tmp_path / "results.db"))
    add_run(store, "run1", host='{"hostname": "h"}')
    for repeat, (speed, flag) in enumerate([(1000.0, 0.0), (1010.0, 0.0), (400.0, 1.0)]):
        row = record("run1", "pytorch", "cnn", "ok", speed, repeat=repeat, notes=[f"disturbed: {REASON}"] * int(flag))
        row.metrics.append(Metric(DISTURBED, flag, "flag"))
        store.record_cell(row)
    return store


def test_the_table_names_each_disturbed_repeat_with_its_reason(tmp_path):
    _, notes = speed_table(disturbed_run(tmp_path).cell_rows("run1"), "pytorch")
    assert [note for note in notes if note.startswith("DISTURBED")] == [
        f"DISTURBED cpu/cnn/bs32 pytorch repeat 2: {REASON}"
    ]


def test_report_bars_count_the_flagged_repeats_and_the_figure_is_drawn(tmp_path):
    rows = disturbed_run(tmp_path).cell_rows("run1")
    speed = report.summaries(report.cell_frame(rows), "train_img_per_s")
    assert speed["flagged"].tolist() == [1]
    built = report.build(disturbed_run(tmp_path / "again"), "run1")
    throughput = next(figure for figure in built.figures if figure.name == "throughput")
    assert "crimson-hatched bars include disturbed or timing-suspect repeats" in throughput.caption


def test_exports_carry_the_flag_and_its_reason(tmp_path):
    flat = views.flat_rows(disturbed_run(tmp_path), "run1")
    assert [row[DISTURBED] for row in flat] == [0.0, 0.0, 1.0]
    assert [row["disturbed_reason"] for row in flat] == [None, None, REASON]
    assert "timing_suspect_reason" in pd.DataFrame(flat)


def test_compare_leaves_disturbed_repeats_out_and_names_them():
    base = side("1.9.1", "mlp", [1000, 1010, 990, 1005, 995])
    cand = side("1.6.0", "mlp", [1002, 998, 1004, 400, 1001])
    cand[3].metrics[DISTURBED] = 1.0  # a burner beside it: 400 img/s says nothing about the build
    result = compare(base, cand, "build", Settings(), "mxnet@1.9.1", "mxnet@1.6.0")
    pair = result.pairs[0]
    assert pair.verdict is Verdict.NOT_SLOWER and pair.candidate.metric.n == 4
    assert pair.notes[0] == "left out, disturbed: cpu/mxnet/mlp/bs32/e1/hybridize=True repeat 3 of run r"
    kept = compare(base, [replace(row, metrics={**row.metrics, DISTURBED: 0.0}) for row in cand], "build",
                   Settings(), "a", "b")  # fmt: skip
    assert kept.pairs[0].candidate.metric.n == 5 and not any(n.startswith("left out") for n in kept.pairs[0].notes)
