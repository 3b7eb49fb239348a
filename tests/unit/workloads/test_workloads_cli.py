"""The CLI contract, run end to end with a NumPy stand-in for a framework adapter."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import workloads.__main__
import workloads.run
from workloads.__main__ import main
from workloads.contract import RESULT_SCHEMA, WorkloadExit
from workloads.datasets.idx import FILES as IDX_FILES
from workloads.datasets.idx import write_sample
from workloads.errors import RequestError, oom_reason
from workloads.frameworks import parse_options
from workloads.replicas import share_bounds, usable_samples
from workloads.timing import Recorder


class FakeAdapter:
    """Trains nothing; reports each step to the recorder like a real adapter."""

    versions = {"fake": "1.0"}
    device = "cpu"
    notes = ["fake"]
    channels_first = True

    def __init__(self, options: dict[str, Any], fail: BaseException | None = None) -> None:
        self.options = dict(options)
        self.fail = fail
        self.built: tuple[Any, Any] | None = None

    def build(self, model: Any, inputs: Any) -> int:
        self.built = (model, inputs)
        return 101770 if model.name == "mlp" else 203434

    def place(self, x: np.ndarray, y: np.ndarray, where: str) -> None:
        self.x, self.where = x, where

    def warm_up(self, batch_sizes: list[int]) -> None:
        self.warmed = batch_sizes

    def fit(self, batch_size: int, epochs: int, recorder: Recorder) -> None:
        if self.fail is not None:
            raise self.fail
        for epoch in range(epochs):
            recorder.start_epoch()
            for start in range(0, len(self.x), batch_size):
                recorder.step(len(self.x[start : start + batch_size]))
            recorder.end_epoch(0.5 / (epoch + 1), 0.75)

    def synchronize(self) -> None:
        pass

    def device_memory_bytes(self) -> int | None:
        return None

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((len(x), 10), dtype=np.float32)

    def peak_device_memory_mb(self) -> float | None:
        return None


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    write_sample(tmp_path / "data", n_train=200, n_test=40, seed=0)
    return tmp_path / "data"


def _args(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--framework",
        "pytorch",
        "--model",
        "mlp",
        "--dataset",
        "fashion_mnist",
        "--data-dir",
        str(data_dir),
        "--batch-size",
        "32",
        "--out",
        str(out),
        *extra,
    ]


def _use_fake(monkeypatch: pytest.MonkeyPatch, fail: BaseException | None = None) -> None:
    monkeypatch.setattr(
        workloads.run, "create", lambda framework, options, lr, seed, optimizer, replicas=1: FakeAdapter(options, fail)
    )


def test_run_writes_a_complete_result(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    _use_fake(monkeypatch)
    out = tmp_path / "r.json"
    args = _args(data_dir, out, "--max-samples", "150", "--epochs", "2", "--warmup-steps", "2")
    assert main([*args, "--option", "compile=true", "--option", "drop_remainder=false"]) == 0
    result = json.loads(out.read_text())
    assert result["schema"] == RESULT_SCHEMA
    assert result["versions"]["fake"] == "1.0" and "python" in result["versions"]
    assert result["options"] == {
        "compile": True,
        "precision": "fp32",
        "data_format": "channels_first",
        "input": "device",
        "drop_remainder": False,
    }
    assert (result["samples_per_epoch"], result["max_samples"], result["test_samples"]) == (150, 150, 40)
    assert result["warmup"]["steps"] == 3  # 2 full batches and the partial one: every shape the epochs use
    note = "3 untimed warm-up steps before the first timed epoch (batch sizes 32, 22: every shape the epochs use)"
    assert result["warmup"]["note"].startswith(note)
    assert result["warmup_seconds"] >= 0
    assert result["timing"]["timed_steps"] == 10 and result["timing"]["timed_samples"] == 300
    assert result["timing"]["window_steps"] == 20 and result["timing"]["windows"] == 2
    assert result["train_window"]["samples"] == 300
    assert result["train_window"]["start_unix"] <= result["train_window"]["end_unix"]
    assert "input device (default): on a CPU the framework's tensors live in host memory" in result["notes"]
    assert len(result["epoch_seconds"]) == 2
    assert result["train_img_per_s"] > 0 and result["inference_img_per_s"] > 0
    assert result["final_loss"] == 0.25 and result["final_accuracy"] == 0.75
    assert result["epoch_losses"] == [0.5, 0.25]
    assert result["inference_batches"] == 2  # 40 test samples at batch 32
    assert "capped at 150 training samples per epoch (of 200)" in result["notes"]
    assert result["data_provenance"]["kind"] == "user"  # written by hand here, no PROVENANCE.json
    assert sorted(result["data_provenance"]["files"]) == sorted(IDX_FILES)
    assert 0 < result["inference_latency_p50_ms"] <= result["inference_latency_p99_ms"]
    assert result["validation_accuracy"] is None and result["peak_device_memory_mb"] is None
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["peak_rss_mb"] > 1
    assert "last step of each epoch is a partial batch of 22" in result["notes"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_replicas_train_a_global_batch_and_only_rank_0_writes(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_fake(monkeypatch)
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it in each worker: no second launch
    monkeypatch.setenv("RANK", "0")
    out = tmp_path / "r.json"
    assert main(_args(data_dir, out, "--max-samples", "151", "--warmup-steps", "1", "--replicas", "2")) == 0
    result = json.loads(out.read_text())
    assert (result["replicas"], result["batch_size"], result["global_batch_size"]) == (2, 32, 64)
    assert result["samples_per_epoch"] == 128
    assert "1 training samples left out so every replica gets a share of each step" in result["notes"]
    expected = (
        "drop_remainder: 22 of 150 training samples left out (the partial last batch), so every step has 64 samples"
    )
    assert expected in result["notes"]
    assert "written to" in capsys.readouterr().out

    monkeypatch.setenv("RANK", "1")
    other = tmp_path / "rank1.json"
    assert main(_args(data_dir, other, "--max-samples", "151", "--warmup-steps", "1", "--replicas", "2")) == 0
    assert not other.exists() and capsys.readouterr().out == ""


def test_pytorch_replicas_relaunch_under_torchrun(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path):
    launched: list[tuple[list[str], int]] = []
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(workloads.__main__, "torchrun", lambda argv, replicas: launched.append((argv, replicas)) or 7)
    args = _args(data_dir, tmp_path / "r.json", "--replicas", "4")
    assert main(args) == 7  # torchrun's exit code is the command's
    assert launched == [(args, 4)]


def test_the_ops_benchmark_refuses_replicas(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = ["run", "--framework", "mxnet", "--model", "ops", "--dataset", "none", "--replicas", "2"]
    assert main([*args, "--out", str(tmp_path / "r.json")]) == 2
    assert "times single operations on one device: --replicas must be 1" in capsys.readouterr().err


def test_replica_shards_cover_the_batch_in_order() -> None:
    parts = [np.arange(10)[slice(*share_bounds(10, 4, replica))] for replica in range(4)]
    assert [len(part) for part in parts] == [3, 3, 2, 2]
    assert np.concatenate(parts).tolist() == list(range(10))
    assert usable_samples(151, 2) == 150 and usable_samples(150, 4) == 148 and usable_samples(7, 1) == 7


def test_warmup_may_outlast_an_epoch(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    _use_fake(monkeypatch)
    assert main(_args(data_dir, tmp_path / "r.json", "--max-samples", "64")) == 0  # 2 steps/epoch, 10 warm-up
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["warmup"]["steps"] == 10 and result["timing"]["timed_steps"] == 2


def test_no_full_batch_exits_2_with_advice_that_works(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_fake(monkeypatch)
    assert main(_args(data_dir, tmp_path / "r.json", "--max-samples", "20")) == 2
    assert (
        "20 training samples make no full step of 32 samples (the global batch): lower --batch-size, "
        "use more samples (--max-samples), or set --option drop_remainder=false" in capsys.readouterr().err
    )
    assert not (tmp_path / "r.json").exists()
    args = _args(data_dir, tmp_path / "r.json", "--max-samples", "20", "--option", "drop_remainder=false")
    assert main(args) == 0  # the advice works


def test_generated_samples_size_a_generated_dataset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_fake(monkeypatch)
    out = tmp_path / "r.json"
    args = ["run", "--framework", "pytorch", "--model", "lstm", "--dataset", "synthetic_seq", "--out", str(out)]
    assert main([*args, "--generated-samples", "96", "--batch-size", "32", "--warmup-steps", "1"]) == 0
    assert json.loads(out.read_text())["samples_per_epoch"] == 96
    assert main([*args, "--generated-samples", "16", "--batch-size", "32"]) == 2
    assert "lower --batch-size, raise --generated-samples, or set" in capsys.readouterr().err
    fashion = _args(tmp_path, out, "--generated-samples", "10")
    assert main(fashion) == 2
    assert "--generated-samples applies to generated datasets only, not to fashion_mnist" in capsys.readouterr().err


def test_missing_dataset_exits_2_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(tmp_path / "nowhere", tmp_path / "r.json")) == 2
    assert "train-images-idx3-ubyte.gz: missing dataset file" in capsys.readouterr().err


def test_unwritable_out_folder_exits_2(data_dir: Path, tmp_path: Path) -> None:
    assert main(_args(data_dir, tmp_path / "missing" / "r.json")) == 2


def test_unknown_model_exits_2(data_dir: Path, tmp_path: Path) -> None:
    args = _args(data_dir, tmp_path / "r.json")
    args[args.index("mlp")] = "resnet"
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("raised", "code", "marker"),
    [
        (
            RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
            WorkloadExit.OOM,
            "BENCHMATRIX_OOM RuntimeError",
        ),
        (ZeroDivisionError("bug"), WorkloadExit.CRASHED, None),
    ],
    ids=["oom", "crash"],
)
def test_a_failure_exits_with_its_own_code_and_traceback(
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    raised,
    code,
    marker,
) -> None:
    """Out of memory exits OOM after its marker line on stdout; anything else exits CRASHED."""
    _use_fake(monkeypatch, raised)
    assert main(_args(data_dir, tmp_path / "r.json", "--warmup-steps", "2")) == code
    captured = capsys.readouterr()
    assert "Traceback" in captured.err and str(raised) in captured.err
    assert captured.out.splitlines()[-1].startswith(marker) if marker else "BENCHMATRIX_OOM" not in captured.out
    assert not (tmp_path / "r.json").exists()


def test_parse_options_defaults_and_values() -> None:
    assert parse_options("tensorflow", []) == {
        "jit_compile": False,
        "run_eagerly": False,
        "precision": "fp32",
        "data_format": "channels_last",
        "gpu_memory": "growth",
        "input": None,
        "drop_remainder": True,
    }
    assert parse_options("tensorflow", ["gpu_memory=all"], device="gpu")["gpu_memory"] == "all"
    assert parse_options("jax", ["input=host", "drop_remainder=false"], device="cpu")["input"] == "host"
    with pytest.raises(RequestError, match="supports gpu_memory=0.5 on GPUs only"):
        parse_options("tensorflow", ["gpu_memory=0.5"], device="cpu")
    assert parse_options("jax", [])["jit_compile"] is None
    assert parse_options("keras-mxnet", []) == {"data_format": "channels_first", "input": None, "drop_remainder": True}
    assert parse_options("mxnet", ["hybridize=TRUE"])["hybridize"] is True
    assert parse_options("pytorch", ["precision=bf16", "data_format=channels_last"])["precision"] == "bf16"


@pytest.mark.parametrize(
    ("framework", "pair", "message"),
    [
        (
            "pytorch",
            "jit_compile=true",
            "unknown option 'jit_compile' for pytorch; "
            "known options: compile, data_format, drop_remainder, input, precision",
        ),
        ("keras-mxnet", "hybridize=true", "known options: data_format, drop_remainder, input$"),
        ("jax", "input=disk", "expected input= one of device, host"),
        ("mxnet", "hybridize=yes", "expected hybridize=true or hybridize=false"),
        ("mxnet", "hybridize", "expected hybridize=true or hybridize=false"),
        ("pytorch", "precision=fp64", "expected precision= one of fp32, bf16, fp16"),
        ("keras-mxnet", "precision=bf16", "unknown option 'precision' for keras-mxnet"),
    ],
)
def test_parse_options_refuses(framework: str, pair: str, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        parse_options(framework, [pair])


def test_oom_reason_recognises_framework_wordings() -> None:
    assert oom_reason(MemoryError()) == "MemoryError: no message"
    jax_error = RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8 bytes")
    assert oom_reason(jax_error) == f"RuntimeError: {jax_error}"
    tf_error = type("ResourceExhaustedError", (Exception,), {})("OOM when allocating tensor")
    assert oom_reason(tf_error) == "ResourceExhaustedError: OOM when allocating tensor"
    mxnet_error = RuntimeError(
        "Traceback (most recent call last):\n  File x\nMXNetError: Failed to allocate CPU Memory"
    )
    assert oom_reason(mxnet_error) == "RuntimeError: MXNetError: Failed to allocate CPU Memory"
    try:
        try:
            raise MemoryError("numpy")
        except MemoryError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert oom_reason(outer) == "MemoryError: numpy"
    assert oom_reason(ValueError("shapes do not match")) is None


def test_non_finite_metrics_become_null(tmp_path: Path) -> None:
    from workloads.result import Result, Warmup, write_result

    result = Result(
        framework="pytorch", versions={}, model="mlp", dataset="fashion_mnist", device="cpu", params=1,
        batch_size=32, epochs=1, samples_per_epoch=64, max_samples=None, optimizer="adam", lr=0.001,
        options={}, warmup=Warmup("steps", 1, "n"), epoch_seconds=[1.0], train_seconds=1.0,
        train_img_per_s=64.0, step_seconds_median=0.5, final_loss=math.nan, final_accuracy=0.1,
        test_accuracy=None, inference_img_per_s=1.0, peak_rss_mb=1.0,
    )  # fmt: skip
    data = json.loads(write_result(result, tmp_path / "r.json").read_text())
    assert data["final_loss"] is None and data["train_img_per_s"] == 64.0


def test_gpu_only_values_and_contradictions_are_refused() -> None:
    with pytest.raises(RequestError, match="pytorch supports precision=fp16 on GPUs only"):
        parse_options("pytorch", ["precision=fp16"], device="cpu")
    assert parse_options("pytorch", ["precision=fp16"], device="gpu")["precision"] == "fp16"
    with pytest.raises(RequestError, match="tensorflow supports data_format=channels_first on GPUs only"):
        parse_options("tensorflow", ["data_format=channels_first"], device="cpu")
    with pytest.raises(RequestError, match="run_eagerly=true and jit_compile=true cannot be combined"):
        parse_options("tensorflow", ["run_eagerly=true", "jit_compile=true"])


def test_mnist_holds_out_a_validation_split(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_fake(monkeypatch)
    write_sample(tmp_path / "mnist", n_train=200, n_test=40, seed=0)
    out = tmp_path / "r.json"
    args = _args(tmp_path / "mnist", out, "--warmup-steps", "1")
    args[args.index("fashion_mnist")] = "mnist"
    assert main(args) == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert (result["samples_per_epoch"], result["validation_samples"], result["test_samples"]) == (160, 40, 40)
    assert 0.0 <= result["validation_accuracy"] <= 1.0
    assert "validation: 40 of 200 training samples held out (seeded), not trained on" in result["notes"]


@pytest.mark.parametrize(
    ("model", "dataset", "message"),
    [
        ("lstm", "fashion_mnist", "model lstm takes sequence input, but dataset fashion_mnist holds images"),
        ("mlp", "none", "model ops takes dataset none, and only it does"),
    ],
)
def test_model_and_dataset_must_match(
    model: str, dataset: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(tmp_path, tmp_path / "r.json")
    args[args.index("mlp")] = model
    args[args.index("fashion_mnist")] = dataset
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_ops_has_no_keras_mxnet_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "--framework", "keras-mxnet", "--model", "ops", "--dataset", "none", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    assert "the ops benchmark has no keras-mxnet backend" in capsys.readouterr().err


def test_plugin_models_become_model_choices(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    _use_fake(monkeypatch)
    plugins = Path(__file__).resolve().parents[3] / "examples" / "plugins"
    out = tmp_path / "r.json"
    args = _args(data_dir, out, "--warmup-steps", "1", "--plugin-dir", str(plugins))
    args[args.index("mlp")] = "mnist_mlp"
    assert main(args) == 0
    assert json.loads(out.read_text())["model"] == "mnist_mlp"


def test_the_orchestrators_argv_parses_back_to_the_same_arguments(tmp_path: Path) -> None:
    """Every field set away from its default, so a field the parser or argv leaves out fails here."""
    from dataclasses import MISSING, fields

    from workloads.__main__ import build_parser
    from workloads.contract import RunArgs, Training

    training = Training(
        framework="jax",
        model="resnet50",
        dataset="synthetic",
        batch_size=256,
        epochs=3,
        optimizer="sgd",
        lr=0.1,
        max_samples=5000,
        generated_samples=4096,
        warmup_steps=7,
    )
    given = RunArgs(
        training,
        out=tmp_path / "r.json",
        data_dir=tmp_path / "d",
        window_steps=5,
        seed=2,
        replicas=4,
        options=(("precision", "bf16"), ("input", "host")),
        plugin_dirs=(tmp_path / "plugins",),
    )
    for value in (training, given):
        assert [f.name for f in fields(value) if f.default is not MISSING and getattr(value, f.name) == f.default] == []
    assert RunArgs.from_namespace(build_parser().parse_args(given.argv())) == given
    defaults = RunArgs(Training(framework="mxnet", model="mlp", dataset="fashion_mnist"), out=tmp_path / "r.json")
    assert RunArgs.from_namespace(build_parser().parse_args(defaults.argv())) == defaults
    assert RunArgs.from_namespace(build_parser().parse_args(defaults.argv()[:7] + ["--out", "r"])) == RunArgs(
        defaults.training, out=Path("r")
    )  # the CLI's defaults are the dataclasses' own
