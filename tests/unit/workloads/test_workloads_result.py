"""The result document is one set of dataclasses both ways: what a cell writes, the host reads back
field for field; documents stored by earlier versions still load; a key that does not fit is named."""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, fields, replace
from pathlib import Path

import pytest

from tests.results import RESULT
from workloads.result import Metric, OpsResult, Result, ResultError, TrainWindow, Warmup, read_result, write_result

GOLDEN = Path(__file__).parents[1] / "golden"


def test_a_stored_document_reads_typed_and_writes_back_byte_for_byte(tmp_path: Path) -> None:
    stored = GOLDEN / "result_mxnet_mlp.json"  # written by an mxnet cell of `make matrix`
    document = read_result(stored)
    assert isinstance(document, Result) and document.train_window == TrainWindow(
        1796161595.8507369, 1796161597.8066058, 60000
    )
    assert document.warmup.steps == 10 and document.options["hybridize"] is True
    assert write_result(document, tmp_path / "again.json").read_text() == stored.read_text()


def test_a_document_of_the_first_schema_loads_with_the_later_fields_defaulted(tmp_path: Path) -> None:
    first = GOLDEN / "result_first_schema.json"  # the fields the first Result had, a diverged loss as null
    document = read_result(first)
    assert isinstance(document, Result) and math.isnan(document.final_loss)
    assert document.train_window is None and document.replicas == 1 and document.timing == {}
    written = json.loads(write_result(document, tmp_path / "again.json").read_text())
    assert {key: written[key] for key in json.loads(first.read_text())} == json.loads(first.read_text())


def test_every_field_survives_the_trip(tmp_path: Path) -> None:
    """Each field set away from its default, so a field the reader drops fails here."""
    full = replace(
        RESULT, max_samples=100, test_accuracy=0.5, seed=3, test_samples=7, notes=["n"], validation_accuracy=0.25,
        validation_samples=5, inference_latency_p50_ms=1.0, inference_latency_p99_ms=2.0, inference_batches=9,
        peak_device_memory_mb=12.5, epoch_losses=[0.5], replicas=2, global_batch_size=64, warmup_seconds=0.75,
        timing={"windows": 3}, timing_suspect=True, train_window=TrainWindow(1.0, 2.0, 64),
        data_provenance={"kind": "generated"}, epoch_seconds=[1.0],
    )  # fmt: skip
    optional = [f for f in fields(Result) if f.default is not MISSING or f.default_factory is not MISSING]
    defaults = {f.name: f.default if f.default is not MISSING else f.default_factory() for f in optional}  # type: ignore[misc]
    assert [name for name, default in defaults.items() if getattr(full, name) == default] == []
    assert read_result(write_result(full, tmp_path / "r.json")) == full


def test_an_ops_document_reads_back_as_ops(tmp_path: Path) -> None:
    ops = OpsResult(
        framework="jax", versions={}, model="ops", dataset="none", device="cpu", options={},
        warmup=Warmup("calls", 3, "n"), sizes=[64], repeats=3, peak_rss_mb=10.0, seed=1, notes=["x"],
        metrics=[Metric("op_gemm_n64", 1e-5, "s")],
    )  # fmt: skip
    assert read_result(write_result(ops, tmp_path / "r.json")) == ops


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("train_img_per_s"), "key 'train_img_per_s' is missing"),
        (lambda d: d["warmup"].pop("note"), "key 'warmup.note' is missing"),
        (lambda d: d.update(params="many"), "key 'params': expected int, got 'many'"),
        (lambda d: d.update(params=True), "key 'params': expected int, got True"),
        (lambda d: d.update(notes=["ok", 3]), r"key 'notes\[1\]': expected str, got 3"),
        (lambda d: d.update(train_window={"start_unix": 1.0, "end_unix": "late", "samples": 1}),
         "key 'train_window.end_unix': expected float, got 'late'"),
        (lambda d: d.update(versions={"python": 3}), "key 'versions.python': expected str, got 3"),
        (lambda d: d.update(warmup="none"), "key 'warmup': expected an object, got 'none'"),
    ],
)  # fmt: skip
def test_a_key_that_does_not_fit_is_named(tmp_path: Path, change, message: str) -> None:
    data = RESULT.to_json()
    change(data)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultError, match=f"^{path}: {message}"):
        read_result(path)


def test_a_missing_unreadable_or_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    with pytest.raises(ResultError, match="wrote no result"):
        read_result(path)
    path.write_text(json.dumps({"schema": "other/9"}))
    with pytest.raises(ResultError, match="expected schema benchmatrix.result/1, got 'other/9'"):
        read_result(path)
    path.write_text("{broken")
    with pytest.raises(ResultError, match="unreadable"):
        read_result(path)
