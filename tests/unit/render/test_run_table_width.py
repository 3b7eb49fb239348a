"""The run table and `results` at 80 columns: stacked so that no figure loses a digit, wide where
there is room; versions, data provenance and n are named either way."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from orchestrator.metrics import Metric
from orchestrator.render.views import print_cells, print_repeat_summary, print_speed_table
from orchestrator.store.database import Store
from tests.stores import add_run, cell

SPEEDS = {
    "tensorflow": (14_287.9, 924.5),
    "pytorch": (23_386.8, 976.1),
    "mxnet": (13_450.5, 664.1),
    "keras-mxnet": (11_484.4, 292.1),
    "jax": (51_028.5, 208.4),
}
VERSIONS = {
    "tensorflow": {"tensorflow": "2.16.1", "keras": "3.3.3"},
    "pytorch": {"torch": "2.3.0+cpu"},
    "mxnet": {"mxnet": "1.9.1"},
    "keras-mxnet": {"keras": "2.2.4.3", "mxnet": "1.9.1"},
    "jax": {"jax": "0.4.30", "jaxlib": "0.4.30", "keras": "3.3.3"},
}
GENERATED = {"kind": "generated", "seed": 0, "n": 60_000, "n_test": 10_000, "files": {}}
CAP = "capped at 6000 training samples per epoch"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """The default matrix's shape: five frameworks, mlp and cnn, one repeat (mlp: two), generated data."""
    store = Store(str(tmp_path_factory.mktemp("width") / "results.db"))
    add_run(store, "run1", reference="tensorflow")
    records = []
    for framework, (mlp, cnn) in SPEEDS.items():
        for workload, speed, repeats in (("mlp", mlp, 2), ("cnn", cnn, 1)):
            for repeat in range(repeats):
                records.append(
                    cell(
                        config_hash=f"{framework}-{workload}",
                        repeat=repeat,
                        framework=framework,
                        version="2.16.1" if framework == "tensorflow" else "1",
                        workload=workload,
                        model=workload,
                        versions={"python": "3.11.2", "numpy": "1.26.4", **VERSIONS[framework]},
                        notes=[CAP] if workload == "cnn" else ["input device (default)"],
                        metrics=[Metric("train_img_per_s", speed, "img/s")],
                        data_provenance=GENERATED,
                    )
                )
    store.record_cells(records)
    return store


def render(store: Store, width: int) -> str:
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    print_speed_table(console, store, "run1", None)
    print_cells(console, store, "run1")
    print_repeat_summary(console, store, "run1")
    return console.export_text()


def test_at_80_columns_every_figure_is_whole_and_no_line_is_wider(store):
    text = render(store, 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    for framework, (mlp, cnn) in SPEEDS.items():
        assert f"{mlp:,.1f}" in text and f"{cnn:,.1f}" in text, framework  # the run table
        assert f"{mlp:,.0f}" in text, framework  # the cells table
        if framework != "tensorflow":
            assert f"{mlp / SPEEDS['tensorflow'][0]:.0%}" in text and f"{cnn / SPEEDS['tensorflow'][1]:.0%}" in text
    assert "tensorflow (img/s)" not in text  # stacked: one row per framework, not one column


def test_where_there_is_room_the_table_is_wide(store):
    text = render(store, 250)
    assert re.search(r"tensorflow \(img/s\) .* jax \(img/s\) .* jax / tensorflow", text)
    assert "51,028.5" in text and "357%" in text


@pytest.mark.parametrize("width", [80, 250])
def test_the_table_names_versions_data_and_n(store, width):
    text = " ".join(render(store, width).split())  # footnotes wrap at 80 columns
    assert "version in the container: tensorflow = keras 3.3.3, tensorflow 2.16.1" in text
    assert "jax = jax 0.4.30, jaxlib 0.4.30, keras 3.3.3" in text
    assert "data: fashion_mnist, generated (seed 0, n 60,000): accuracy meaningless" in text
    assert "n < 3 everywhere (n = 1–2): each figure is one or two measurements, no spread" in text
    assert "cnn: capped at 6000 training samples per epoch" in text
    assert "generated" in text.split("Cells")[1]  # each cell's data provenance
