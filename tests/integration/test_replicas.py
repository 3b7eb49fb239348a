"""Data-parallel training (`--replicas 2`) in every framework's real image, in a hardened cell.

This machine has no GPU, so the replicas are CPU devices: the same code path a 4_gpu cell takes
(MirroredStrategy, DDP under torchrun over Gloo, Gluon contexts, Keras 3 DataParallel on JAX,
keras-mxnet's multi_gpu_model), without a claim about speed.
"""

from __future__ import annotations

import json

import pytest

from orchestrator.backends.engine import writable_by_cell
from tests.integration.conftest import run_workloads
from tests.integration.test_workloads_models import IMAGES

MECHANISM = {
    "tensorflow": "tf.distribute.MirroredStrategy over /cpu:0, /cpu:1",
    "pytorch": "DistributedDataParallel over 2 CPU processes (gloo), one torchrun process per replica",
    "mxnet": "Gluon data parallelism over [cpu(0), cpu(1)], kvstore local",
    "jax": "keras.distribution.DataParallel over 2 JAX cpu devices",
    "keras-mxnet": "keras.utils.multi_gpu_model over 2 cpu contexts",
}


@pytest.fixture(scope="module")
def replicated(engine, built_images, sample_data, tmp_path_factory) -> dict[str, tuple[dict, str]]:
    """Each framework's result JSON and log after one epoch of the MLP on two replicas."""
    found = {}
    for framework, image in IMAGES.items():
        results = tmp_path_factory.mktemp(f"replicas-{framework}")
        writable_by_cell(results)
        command = ["run", "--framework", framework, "--model", "mlp", "--dataset", "fashion_mnist"]
        command += ["--data-dir", "/data/fashion_mnist", "--batch-size", "32", "--replicas", "2"]
        command += ["--warmup-steps", "3", "--out", "/results/result.json"]
        ended = run_workloads(engine, image, command, sample_data, results, ("test-replicas", framework))
        assert ended.exit_code == 0, f"{framework}:\n{ended.logs[-4000:]}"
        found[framework] = (json.loads((results / "result.json").read_text()), ended.logs)
    return found


def test_every_framework_trains_on_two_replicas_its_own_way(replicated):
    for framework, (result, _) in replicated.items():
        assert MECHANISM[framework] in result["notes"], (framework, result["notes"])
        assert (result["replicas"], result["batch_size"], result["global_batch_size"]) == (2, 32, 64), framework
        # 1200 samples at a global batch of 64: 18 full steps (drop_remainder), every replica's share counted.
        assert result["samples_per_epoch"] == 1152 and result["train_img_per_s"] > 0, framework
        assert result["timing"]["timed_samples"] == 1152 and result["timing"]["timed_steps"] == 18, framework


def test_the_global_batch_is_said_and_the_whole_epoch_is_counted(replicated):
    for framework, (result, _) in replicated.items():
        assert any("global batch 64 = 32 per replica × 2" in note for note in result["notes"]), framework
        assert 0.0 < result["final_accuracy"] <= 1.0 and result["final_loss"] > 0, framework


def test_only_the_first_pytorch_process_logs_and_writes(replicated):
    _, logs = replicated["pytorch"]
    assert "2 PyTorch DDP processes under torchrun" in logs
    assert logs.count("epoch 1/1:") == 1 and logs.count("written to /results/result.json") == 1
