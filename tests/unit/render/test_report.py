"""`report` on a synthetic run that has every kind of content: repeats, failures, batch sweeps,
several epoch counts, 1 and 4 GPUs with GPU metrics, and operation micro-benchmarks; and on a
single-repeat run of generated data, which must say so everywhere."""

from __future__ import annotations

import base64
import json
import random
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from bench import cells
from orchestrator.metrics import SPEED, Metric
from orchestrator.render import plots, report, views
from orchestrator.store.database import Store
from tests.stores import add_run
from workloads.ops import metric_name

T0 = datetime(2026, 11, 22, tzinfo=UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SPEEDS = {"tensorflow": 1000.0, "pytorch": 1400.0, "mxnet": 800.0}
OPS_SIZES = (1_000, 10_000, 100_000, 1_000_000)
OFFICIAL = {"kind": "official", "verified": {"train-images-idx3-ubyte.gz": "0" * 64}, "files": {}}
GENERATED = {"kind": "generated", "seed": 0, "n": 60_000, "n_test": 10_000}
CAP = "capped at 6000 training samples per epoch"


def record(framework, system, gpus, workload, batch, epochs, repeat, status="ok", extra=(), scale=1.0, run_id="run1"):
    rng = random.Random(f"{framework}{system}{workload}{batch}{epochs}{repeat}")
    speed = SPEEDS[framework] * scale * (batch / 32) ** 0.3 * rng.uniform(0.97, 1.03)
    training = [
        Metric("train_img_per_s", speed, "img/s"),
        Metric("epoch_seconds_median", 6000 / speed, "s"),
        Metric("warmup_seconds", 2.5 if framework == "tensorflow" else 1.0, "s"),
        Metric("test_accuracy", min(0.99, 0.80 + 0.03 * epochs + rng.uniform(-0.01, 0.01)), "1"),
    ]
    metrics = [*(training if workload != "ops" else []), *extra]
    return cells.of_framework(
        framework,
        workload,
        run_id=run_id,
        config_hash=f"{framework}-{system}-{workload}-{batch}-{epochs}",
        repeat=repeat,
        system=system,
        variant="gpu" if gpus else "cpu",
        batch_size=batch,
        epochs=epochs,
        config={"gpus": gpus},
        image=f"benchmatrix/{framework}:1",
        status=status,
        exit_code=0 if status == "ok" else 3,
        log_tail=None if status == "ok" else "step 12\nBENCHMATRIX_OOM: CUDA out of memory",
        metrics=metrics if status == "ok" else [],
        data_provenance=OFFICIAL if status == "ok" and workload != "ops" else None,
    )


def synthetic_run(store: Store) -> None:
    add_run(
        store,
        "run1",
        spec_name="synthetic",
        spec_path="s.yaml",
        host='{"hostname": "h", "cpu_model": "test CPU", "cores": 2, "gpus": [{"name": "Test GPU"}]}',
    )
    records = []
    for framework in SPEEDS:
        for repeat in range(3):
            for batch in (32, 64, 128):
                records.append(record(framework, "cpu", 0, "mlp", batch, 1, repeat))
            for epochs in (1, 3):
                records.append(record(framework, "cpu", 0, "lenet", 200, epochs, repeat))
            for system, gpus in (("1_gpu", 1), ("4_gpu", 4)):
                gpu_metrics = (
                    Metric("gpu_util_pct_mean", 60 + 10 * gpus, "%"),
                    Metric("gpu_mem_used_mb_max", 900.0 * gpus, "MB"),
                    Metric("energy_j", 3000.0 * gpus, "J"),
                    Metric("train_img_per_joule", 12_000 / (3000.0 * gpus), "img/J"),
                )
                oom = framework == "pytorch" and gpus == 4
                records.append(
                    record(
                        framework,
                        system,
                        gpus,
                        "cnn",
                        32,
                        1,
                        repeat,
                        "oom" if oom else "ok",
                        gpu_metrics,
                        3.3 * gpus**0.9,
                    )
                )
            ops = [
                Metric(metric_name(op, size), size * k * 1e-9 * 1000 / SPEEDS[framework], "s")
                for op, k in (("relu", 1.0), ("gemm", 40.0))
                for size in OPS_SIZES
            ]
            records.append(record(framework, "cpu", 0, "ops", 1, 1, repeat, extra=ops))
    records.append(record("mxnet", "cpu", 0, "mlp", 32, 1, 3, status="timeout"))
    store.record_cells(records)


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory) -> Store:
    store = Store(str(tmp_path_factory.mktemp("report") / "results.db"))
    synthetic_run(store)
    return store


@pytest.fixture(scope="module")
def built(synthetic_store, tmp_path_factory) -> tuple[report.Report, Path]:
    """Built once: drawing the figures is the slow part."""
    return report.build(synthetic_store, "run1"), tmp_path_factory.mktemp("out")


def test_every_figure_is_drawn_and_written(built):
    result, out = built
    paths = report.write(result, out)
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "index.html",
            "summary.md",
            "throughput.png",
            "ratios.png",
            "gpu.png",
            "epochs.png",
            "scaling.png",
            "batch_sweep.png",
            "ops.png",
        ]
    )
    for path in out.glob("*.png"):
        assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 10_000


def test_html_is_self_contained_with_every_plot_embedded(built):
    result, out = built
    report.write(result, out)
    page = (out / "index.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == 7 and all(base64.b64decode(data).startswith(PNG_MAGIC) for data in embedded)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing loaded from elsewhere
    assert "Out of Memory" in page and "Timeout" in page


def test_summary_has_table4_repeats_with_cv_and_failures(built):
    result, out = built
    report.write(result, out)
    summary = (out / "summary.md").read_text()
    assert "| system | workload | batch | n | tensorflow (img/s) | pytorch (img/s) | mxnet (img/s) |" in summary
    assert "pytorch / tensorflow" in summary
    repeats = result.tables["Repeats"]
    mxnet_mlp = repeats[(repeats["framework"] == "mxnet") & (repeats["workload"] == "mlp") & (repeats["batch"] == 32)]
    assert mxnet_mlp["ok / repeats"].item() == "3 / 4" and mxnet_mlp["not ok"].item() == "Timeout"
    assert mxnet_mlp["CV"].item().endswith("%")
    failures = result.tables["Cells that did not end ok"]
    assert sorted(set(failures["status"])) == ["Out of Memory", "Timeout"]
    assert "BENCHMATRIX_OOM: CUDA out of memory" in set(failures["last log line"])


def test_oom_group_shows_its_status_in_table4(built):
    result, _ = built
    table4 = result.tables["Training speed (seed Table 4 shape)"]
    row = table4[(table4["system"] == "4_gpu") & (table4["workload"] == "cnn")]
    assert row["pytorch (img/s)"].item() == "Out of Memory" and row["pytorch / tensorflow"].item() == "--"


def test_scaling_efficiency_against_one_gpu(built):
    result, _ = built
    scaling = result.tables["Scaling from 1 GPU"]
    four = scaling[(scaling["GPUs"] == 4) & (scaling["framework"] == "tensorflow")]["efficiency"].item()
    assert float(four.rstrip("%")) / 100 == pytest.approx(4**0.9 / 4, abs=0.04)
    pytorch = scaling[(scaling["GPUs"] == 4) & (scaling["framework"] == "pytorch")]
    assert pytorch["median img/s"].item() == "Out of Memory" and pytorch["efficiency"].item() == "--"


def test_a_run_of_only_failures_still_reports(tmp_path):
    store = Store(str(tmp_path / "results.db"))
    add_run(store, "bad")
    store.record_cell(record("mxnet", "cpu", 0, "mlp", 32, 1, 0, status="oom", run_id="bad"))
    paths = report.write(report.build(store, "bad"), tmp_path / "bad")
    assert "Out of Memory" in (tmp_path / "bad" / "summary.md").read_text()
    assert any(p.name == "throughput.png" for p in paths)


def test_the_report_names_the_machines_that_ran_the_cells_not_the_submit_host(tmp_path):
    store = Store(str(tmp_path / "results.db"))
    submit_host = {"backend": "slurm", "submit_host": "login1", "orchestrator": "login1/1/2"}
    add_run(store, "slurm", host=json.dumps(submit_host))
    for repeat, node in enumerate(("node7", "node8", "node7")):
        host = {"hostname": node, "cpu_model": "EPYC", "cores": 64, "gpus": [{"name": "H100"}], "slurm_node": node}
        store.record_cell(replace(record("mxnet", "cpu", 0, "mlp", 32, 1, repeat, run_id="slurm"), host=host))
    facts = report.to_markdown(report.build(store, "slurm"))
    assert "node7 (Slurm node node7): EPYC, 64 cores" in facts and "node8 (Slurm node node8)" in facts
    assert facts.count("Slurm node node7") == 1 and "login1" not in facts
    assert [row["host"] for row in views.flat_rows(store, "slurm")] == ["node7", "node8", "node7"]  # exports too


def test_report_cli_bad_input_exits_2(tmp_path, cli):
    empty = str(tmp_path / "empty.db")
    done = cli("report", "--store", empty, "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "the store has no runs yet" in done.stderr
    store = Store(str(tmp_path / "results.db"))
    add_run(store, "run1")
    store.record_cell(record("mxnet", "cpu", 0, "mlp", 32, 1, 0))
    (tmp_path / "afile").write_text("")
    done = cli("report", "--store", str(tmp_path / "results.db"), "--out", str(tmp_path / "afile" / "out"))
    assert done.returncode == 2 and "cannot write the report there" in done.stderr
    done = cli("report", "--store", str(tmp_path / "results.db"), "--run", "nope", "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "no run 'nope'" in done.stderr
    done = cli("report", "--store", str(tmp_path / "results.db"), "--run", "run1", "--last", "--out", "o")
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


def test_warmup_seconds_and_energy_are_reported_beside_speed(built):
    result, out = built
    repeats = result.tables["Repeats"]
    tensorflow = repeats[(repeats["framework"] == "tensorflow") & (repeats["workload"] == "mlp")]
    assert set(tensorflow["warm-up s"]) == {"2.50"}
    energy = result.tables["Energy over the timed training window (NVML)"]
    assert set(energy["system"]) == {"1_gpu", "4_gpu"}
    one = energy[(energy["system"] == "1_gpu") & (energy["framework"] == "mxnet")]
    assert (one["median energy J"].item(), one["median img/J"].item(), one["n"].item()) == ("3,000", "4.00", 3)
    gpu_figure = next(figure for figure in result.figures if figure.name == "gpu")
    assert "NVML's share of time in which a kernel was running, not how busy the SMs were" in gpu_figure.caption


def test_the_ratio_figure_shows_the_tables_ratio_with_the_spread_of_paired_repeats(synthetic_store):
    cells = report.cell_frame(synthetic_store.cell_rows("run1"))
    ratios = report.ratio_table(report.summaries(cells, SPEED), cells, "tensorflow")
    mlp = ratios[(ratios["workload"] == "mlp") & (ratios["batch"] == 32)].set_index("label")
    assert set(mlp.index) == {"pytorch", "mxnet"}  # the reference is the line at 100 %
    assert mlp.at["pytorch", "median"] == pytest.approx(1.4, abs=0.09)
    assert mlp.at["mxnet", "n"] == 3  # its timed-out repeat 3 has no partner
    for row in mlp.itertuples():
        assert row.low <= row.median <= row.high and row.low < row.high
    oom = ratios[(ratios["system"] == "4_gpu") & (ratios["label"] == "pytorch")]
    assert pd.isna(oom["median"].item()) and oom["status_text"].item() == "Out of Memory"


def test_every_figure_names_the_versions_and_the_data(built):
    result, _ = built
    for figure in result.figures:
        assert "tensorflow = tensorflow 1; pytorch = pytorch 1; mxnet = mxnet 1" in figure.context, figure.name
        assert "data: fashion_mnist, official (sha256 verified: train-images-idx3-ubyte.gz)" in figure.context


def test_the_context_is_drawn_under_the_title():
    figure = plt.figure()
    context = plots.Context({"tensorflow": "tensorflow 2.16.1"}, ["data: fashion_mnist, official"])
    plot = plots._finish(figure, context, "heading", "name", "title", "caption")
    drawn = " ".join(text.get_text() for text in figure.texts)
    assert plot.context in drawn.replace("\n", " ") and "tensorflow = tensorflow 2.16.1" in drawn


def single_generated_run(store: Store) -> None:
    add_run(store, "gen")
    store.record_cells(
        [
            replace(
                record(framework, "cpu", 0, workload, 32, 1, 0, run_id="gen"),
                versions={"python": "3.11.2", framework: "2.0"},
                notes=[CAP] if workload == "cnn" else [],
                data_provenance=GENERATED,
            )
            for framework in ("tensorflow", "pytorch")
            for workload in ("mlp", "cnn")
        ]
    )


def test_a_single_repeat_run_on_generated_data_says_so_everywhere(tmp_path):
    store = Store(str(tmp_path / "results.db"))
    single_generated_run(store)
    built = report.build(store, "gen")
    report.write(built, tmp_path / "out")
    summary = " ".join((tmp_path / "out" / "summary.md").read_text().split())
    assert "**tensorflow in the container**: tensorflow 2.0" in summary
    assert "**data**: fashion_mnist, generated (seed 0, n 60,000): accuracy meaningless" in summary
    assert "n < 3 everywhere (n = 1): each figure is one or two measurements, no spread" in summary
    assert "| system | workload | batch | n |" in summary
    repeats = built.tables["Repeats"]
    assert set(repeats["versions"]) == {"tensorflow 2.0", "pytorch 2.0"}
    assert set(repeats["data"]) == {"fashion_mnist, generated (seed 0, n 60,000): accuracy meaningless"}
    epochs = next(figure for figure in built.figures if figure.name == "epochs")
    assert "cnn, mlp: accuracy meaningless: generated data" in epochs.caption


def test_panels_say_their_cap_and_accuracy_panels_say_meaningless(tmp_path, monkeypatch):
    store = Store(str(tmp_path / "results.db"))
    single_generated_run(store)
    rows = store.cell_rows("gen")
    context = report.figure_context(rows)
    assert context.caps == {"cnn": CAP} and context.generated == {"mlp", "cnn"}
    drawn = []
    monkeypatch.setattr(plots, "_png", lambda figure: drawn.append(figure) or b"")
    cells = report.cell_frame(rows)
    speed = report.summaries(cells, SPEED)
    palette = plots.colours(["tensorflow", "pytorch"])
    plots.ratios(report.ratio_table(speed, cells, "tensorflow"), palette, "tensorflow", context)
    plots.throughput(speed, palette, context)
    plots.epochs(
        report.summaries(cells, "epoch_seconds_median"), report.summaries(cells, "test_accuracy"), palette, context
    )
    ratio_titles, speed_titles, epoch_titles = ([ax.get_title() for ax in figure.axes] for figure in drawn)
    assert ratio_titles == ["mlp · batch 32 · cpu", f"cnn · batch 32 · cpu\n{CAP}"]
    assert speed_titles == ratio_titles
    assert epoch_titles == [
        "mlp · cpu",
        f"mlp · cpu\n{plots.MEANINGLESS}",
        f"cnn · cpu\n{CAP}",
        f"cnn · cpu\n{plots.MEANINGLESS}",
    ]
