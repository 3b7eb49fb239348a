"""Input placement and the timing fields, for every framework, through the orchestrator on the real engine.

One run: the MLP on Fashion-MNIST with `input: [device, host]` and the partial last batch kept for
half the cells, so every framework trains from device-resident tensors and from its own host input
path, and warms every batch shape before its clock (on a CPU both placements hold the split in host
memory; `bench/harness.py` prints what each costs). Clean cells on a quiet machine are not flagged
timing-suspect: a flag that appears on clean runs teaches users to ignore it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import run_spec
from workloads.contract import TIMING_SUSPECT_PREFIX

FRAMEWORKS = {"tensorflow": "2.21.0", "pytorch": "2.13.0", "mxnet": "1.9.1", "keras-mxnet": "2.2.4.3", "jax": "0.10.2"}
OPTIONS = "{input: [device, host], drop_remainder: [true, false]}"
SPEC = "\n".join(
    [
        "name: placement",
        "repeats: 1",
        "reference: pytorch",
        "systems: {cpu: {kind: cpu, memory: 4g}}",
        "frameworks:",
        *(f'  - {{name: {name}, version: "{version}", options: {OPTIONS}}}' for name, version in FRAMEWORKS.items()),
        "workloads:",
        "  - {name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [64], epochs: 2, max_samples: 600,",
        "     warmup_steps: 3}",
    ]
)


@pytest.fixture(scope="module")
def placement_run(built_images, sample_data, tmp_path_factory, cli):
    return run_spec(cli, tmp_path_factory.mktemp("placement"), SPEC, sample_data)


def _key(row: dict) -> tuple[str, str, bool]:
    return row.framework, row.options["input"], row.options["drop_remainder"]


def test_every_framework_trains_from_device_and_host(placement_run):
    assert sorted(_key(row) for row in placement_run) == sorted(
        (name, where, drop) for name in FRAMEWORKS for where in ("device", "host") for drop in (True, False)
    )
    assert {row.status for row in placement_run} == {"ok"}
    for row in placement_run:
        result = json.loads(Path(row.result_path).read_text())
        framework, where, drop = _key(row)
        assert result["options"]["input"] == where, framework
        assert f"input {where} (option)" in result["notes"]
        assert any(note.startswith(f"input {where}: ") for note in result["notes"]), (framework, result["notes"])
        # 600 samples at batch 64: 9 full steps and a partial one of 24, unless it is dropped.
        assert result["samples_per_epoch"] == (576 if drop else 600), framework
        assert result["warmup"]["steps"] == (3 if drop else 4), framework  # the partial shape is warmed too
        assert result["timing"]["timed_steps"] == (18 if drop else 20), framework
        assert result["timing"]["timed_samples"] == 2 * result["samples_per_epoch"]
        assert result["train_window"]["samples"] == 2 * result["samples_per_epoch"]
        assert row.metrics["warmup_seconds"] > 0
        assert row.metrics["timing_suspect"] == 0.0, (framework, where, drop, result["timing"]["suspects"])
        assert not any(note.startswith(TIMING_SUSPECT_PREFIX) for note in result["notes"]), result["notes"]
        assert row.metrics["train_img_per_s"] == pytest.approx(result["train_img_per_s"])
        # A cell this short may end before the 1 Hz sampler's first reading, or have no sample inside its
        # timed window: it says so (and gets no figure) rather than summarising the container's whole life.
        said = (
            "monitoring summaries cover the ",
            "no monitoring samples: the cell ended before",
            "no container sample in the ",
        )
        assert any(note.startswith(said) for note in row.notes), row.notes
