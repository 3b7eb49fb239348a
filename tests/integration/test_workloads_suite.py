"""The workload suite through the orchestrator on the real engine: new datasets, options, ops, a plugin.

One run of small cells, each narrowed to one framework (`frameworks:` on the workload):
LeNet on MNIST with its validation split (Gluon, hybridized), ResNet-20 on CIFAR-10 (PyTorch,
channels_last), the LSTM (keras-mxnet), LeNet on the JPEG folder (TensorFlow, graph mode),
the operations benchmark (PyTorch, MXNet) and docs/workloads.md's plugin model (Gluon).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import run_spec

REPO = Path(__file__).resolve().parents[2]
SPEC = f"""
name: suite
repeats: 1
reference: mxnet
plugins: [{REPO / "examples" / "plugins"}]
systems: {{cpu: {{kind: cpu, memory: 4g}}}}
frameworks:
  - {{name: mxnet, version: "1.9.1", options: {{hybridize: true}}}}
  - {{name: pytorch, version: "2.13.0", options: {{data_format: channels_last}}}}
  - {{name: keras-mxnet, version: "2.2.4.3"}}
  - {{name: tensorflow, version: "2.21.0"}}
workloads:
  - {{name: lenet, model: lenet, dataset: mnist, batch_sizes: [32], max_samples: 256, warmup_steps: 2,
     frameworks: [mxnet]}}
  - {{name: resnet20, model: resnet20, dataset: cifar10, batch_sizes: [16], max_samples: 64, warmup_steps: 1,
     frameworks: [pytorch]}}
  - {{name: lstm, model: lstm, dataset: synthetic_seq, batch_sizes: [16], max_samples: 64, warmup_steps: 1,
     frameworks: [keras-mxnet]}}
  - {{name: jpeg, model: lenet, dataset: imagenet, batch_sizes: [8], max_samples: 32, warmup_steps: 1,
     frameworks: [tensorflow]}}
  - {{name: ops, model: ops, dataset: none, batch_sizes: [1], warmup_steps: 0, frameworks: [pytorch, mxnet]}}
  - {{name: plugin, model: mnist_mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 256,
     warmup_steps: 2, frameworks: [mxnet]}}
"""


@pytest.fixture(scope="module")
def suite_run(built_images, suite_data, tmp_path_factory, cli):
    rows = run_spec(cli, tmp_path_factory.mktemp("suite"), SPEC, suite_data)
    return {(row.workload, row.framework): row for row in rows}


def _result(row: dict) -> dict:
    return json.loads(Path(row.result_path).read_text())


def test_every_cell_ran(suite_run):
    assert set(suite_run) == {
        ("lenet", "mxnet"),
        ("resnet20", "pytorch"),
        ("lstm", "keras-mxnet"),
        ("jpeg", "tensorflow"),
        ("ops", "pytorch"),
        ("ops", "mxnet"),
        ("plugin", "mxnet"),
    }
    assert {row.status for row in suite_run.values()} == {"ok"}


def test_mnist_reports_validation_accuracy_and_latency(suite_run):
    row = suite_run[("lenet", "mxnet")]
    result = _result(row)
    assert result["samples_per_epoch"] == 256 and result["validation_samples"] == 80  # 20 % of 400
    assert 0 <= row.metrics["validation_accuracy"] <= 1 and row.metrics["params"] == 60_170
    assert 0 < row.metrics["inference_latency_p50_ms"] <= row.metrics["inference_latency_p99_ms"]
    assert result["options"]["hybridize"] is True and result["peak_device_memory_mb"] is None


def test_options_reach_the_cell(suite_run):
    result = _result(suite_run[("resnet20", "pytorch")])
    assert result["options"]["data_format"] == "channels_last" and result["params"] == 272_474
    assert len(result["epoch_losses"]) == 1 and result["train_img_per_s"] > 0


def test_sequences_and_jpegs_are_read_in_the_containers(suite_run):
    lstm = _result(suite_run[("lstm", "keras-mxnet")])
    assert lstm["params"] == 215_306 and lstm["test_samples"] == 2000
    jpeg = _result(suite_run[("jpeg", "tensorflow")])
    assert jpeg["samples_per_epoch"] == 32 and jpeg["test_samples"] == 4
    assert any("JPEGs decoded" in note for note in jpeg["notes"])


def test_ops_store_one_metric_per_op_and_size(suite_run):
    for framework in ("pytorch", "mxnet"):
        metrics = suite_run[("ops", framework)].metrics
        timed = {name for name in metrics if name.startswith("op_")}
        assert len(timed) == 11 * 3, framework
        assert all(metrics[name] > 0 for name in timed)
        assert metrics["op_gemm_n1024"] > metrics["op_gemm_n64"]


def test_plugin_model_runs_like_a_built_in_one(suite_run):
    row = suite_run[("plugin", "mxnet")]
    assert row.model == "mnist_mlp" and row.metrics["params"] == 669_706
