"""Every model in every framework's real image: equal trainable parameters, output shapes, loss falls.

One hardened cell container per framework runs `python -m workloads check` over all models on the
sample data: a batch of 2 and two training steps on it, full-size models, tiny work. To keep CI
short, TensorFlow runs Keras eagerly here (tracing and optimising the ResNet-50 and VGG-16 graphs
for two steps costs minutes) and JAX compiles with XLA's cheapest optimisation level. Graph mode
and full optimisation are what `run` (test_workloads_suite.py, test_matrix.py) exercises.
"""

from __future__ import annotations

import json

import pytest

from orchestrator.backends.engine import writable_by_cell
from tests.integration.conftest import run_workloads

# Trainable parameters, the same in every framework (stated in docs/workloads.md).
EXPECTED_PARAMS = {
    "mlp": 101_770,
    "cnn": 203_434,
    "lenet": 60_170,
    "resnet20": 272_474,
    "resnet56": 855_770,
    "vgg16": 15_249_354,
    "resnet50": 25_557_032,
    "lstm": 215_306,
}
CASES = {
    "mlp": "fashion_mnist",
    "cnn": "fashion_mnist",
    "lenet": "mnist",
    "resnet20": "cifar10",
    "resnet56": "cifar10",
    "vgg16": "cifar10",
    "resnet50": "synthetic",
    "lstm": "synthetic_seq",
}
OUTPUT_CLASSES = {"resnet50": 1000}
IMAGES = {
    "tensorflow": "benchmatrix/tensorflow:2.21.0-cpu",
    "jax": "benchmatrix/jax:0.10.2-cpu",
    "keras-mxnet": "benchmatrix/keras-mxnet:2.2.4.3-cpu",
    "pytorch": "benchmatrix/pytorch:2.13.0-cpu",
    "mxnet": "benchmatrix/mxnet:1.9.1-cpu",
}
# Faster to compile, same model: only for this short check (see the module docstring).
CHECK_OPTIONS = {"tensorflow": ["--option", "run_eagerly=true"]}
CHECK_ENVIRONMENT = {
    "jax": {"XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"}
}


@pytest.fixture(scope="module")
def checks(engine, built_images, suite_data, tmp_path_factory) -> dict[str, dict]:
    """Run the check once per framework; each test below reads the five JSON documents."""
    found = {}
    for framework, image in IMAGES.items():
        results = tmp_path_factory.mktemp(f"check-{framework}")
        writable_by_cell(results)
        command = ["check", "--framework", framework, "--data-root", "/data"]
        command += ["--batch-size", "2", "--steps", "2", "--out", "/results/check.json"]
        command += [arg for model, dataset in CASES.items() for arg in ("--case", f"{model}={dataset}")]
        command += CHECK_OPTIONS.get(framework, [])
        ended = run_workloads(
            engine,
            image,
            command,
            suite_data,
            results,
            ("test-workloads-check", framework),
            environment=CHECK_ENVIRONMENT.get(framework),
            memory="6g",
            timeout_s=900,
        )
        assert ended.exit_code == 0, f"{framework}:\n{ended.logs[-4000:]}"
        found[framework] = json.loads((results / "check.json").read_text())
    return found


def test_every_model_has_the_same_trainable_parameters_in_every_framework(checks):
    counts = {fw: {case["model"]: case["params"] for case in doc["cases"]} for fw, doc in checks.items()}
    for framework, by_model in counts.items():
        assert by_model == EXPECTED_PARAMS, framework


def test_outputs_have_one_score_per_class(checks):
    for framework, doc in checks.items():
        for case in doc["cases"]:
            assert case["output_shape"] == [2, OUTPUT_CLASSES.get(case["model"], 10)], (framework, case["model"])


def test_loss_falls_on_a_repeated_batch(checks):
    for framework, doc in checks.items():
        for case in doc["cases"]:
            assert case["ok"] and case["losses"][1] < case["losses"][0], (framework, case["model"], case["losses"])


def test_layouts_follow_each_framework(checks):
    shapes = {fw: {case["model"]: case["input_shape"] for case in doc["cases"]} for fw, doc in checks.items()}
    assert shapes["tensorflow"]["resnet20"] == [32, 32, 3] and shapes["jax"]["resnet50"] == [256, 256, 3]
    assert shapes["pytorch"]["resnet20"] == [3, 32, 32] and shapes["mxnet"]["cnn"] == [1, 28, 28]
    assert shapes["keras-mxnet"]["vgg16"] == [3, 32, 32]  # channels_first, as keras-mxnet advises
    assert all(shape["lstm"] == [64, 32] for shape in shapes.values())


def test_versions_seen_in_the_images(checks):
    versions = {fw: doc["cases"][0]["versions"] for fw, doc in checks.items()}
    assert versions["tensorflow"]["tensorflow"] == "2.21.0" and versions["mxnet"]["mxnet"] == "1.9.1"
    assert versions["keras-mxnet"]["keras"] == "2.2.4.3" and versions["jax"]["jax"] == "0.10.2"
    assert versions["pytorch"]["torch"].startswith("2.13.0")
