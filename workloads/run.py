"""One training run: load data, let the adapter train, measure, build the result.

Everything measured the same way for every framework lives here (data preparation,
the warm-up rule, inference timing, accuracy, memory), so adapters only build, train
and predict.
"""

from __future__ import annotations

import platform
import random
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from workloads import models
from workloads.datasets.selection import select
from workloads.errors import UsageError
from workloads.frameworks import Adapter, OptionValue, create
from workloads.models import InputSpec
from workloads.pairing import check_pairing
from workloads.replicas import usable_samples
from workloads.result import Result, Warmup
from workloads.timing import Recorder, log_line, steps_per_epoch, throughput


@dataclass(frozen=True)
class RunConfig:
    """The CLI's arguments, validated."""

    framework: str
    model: str
    dataset: str
    data_dir: Optional[Path]
    batch_size: int = 32
    epochs: int = 1
    optimizer: str = "adam"
    lr: float = 0.001
    max_samples: Optional[int] = None
    warmup_steps: int = 10
    options: dict[str, OptionValue] = field(default_factory=dict)
    seed: int = 0
    replicas: int = 1

    @property
    def global_batch(self) -> int:
        """Samples per training step over all replicas (``batch_size`` is per replica)."""
        return self.batch_size * self.replicas


@dataclass(frozen=True)
class Inference:
    """Inference over an evaluation split, one synchronised ``predict_batch`` per batch."""

    img_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    batches: int
    accuracy: float


def to_layout(samples: np.ndarray, adapter: Adapter) -> np.ndarray:
    """NHWC images to NCHW when the adapter is fed channels first; other samples unchanged."""
    if samples.ndim == 4 and adapter.channels_first:
        return np.ascontiguousarray(samples.transpose(0, 3, 1, 2))
    return samples


def build(adapter: Adapter, model: models.Model, sample_shape: tuple[int, ...], num_classes: int) -> int:
    channels_first = len(sample_shape) == 3 and adapter.channels_first
    return adapter.build(model, InputSpec(tuple(sample_shape), num_classes, channels_first))


def run(config: RunConfig) -> Result:
    """Train and measure as ``config`` says; raise UsageError if it cannot be measured."""
    check_pairing(config.framework, config.model, config.dataset)
    model = models.get(config.model)
    data = select(config.dataset, config.data_dir, config.max_samples, config.seed)
    notes = list(data.notes)
    kept = usable_samples(len(data.x_train), config.replicas)
    if kept < len(data.x_train):
        notes.append(f"{len(data.x_train) - kept} training samples left out so every replica gets a share of each step")
        data.x_train, data.y_train = data.x_train[:kept], data.y_train[:kept]
    steps = steps_per_epoch(len(data.x_train), config.global_batch)
    if steps <= config.warmup_steps:
        raise UsageError(
            f"{len(data.x_train)} samples at global batch size {config.global_batch} make {steps} steps per epoch, "
            f"too few to leave any after {config.warmup_steps} warm-up steps: "
            "raise --max-samples or lower --warmup-steps"
        )
    random.seed(config.seed)
    np.random.seed(config.seed)

    adapter = create(
        config.framework,
        config.options,
        lr=config.lr,
        seed=config.seed,
        optimizer=config.optimizer,
        replicas=config.replicas,
    )
    x = to_layout(data.x_train, adapter)
    params = build(adapter, model, x.shape[1:], data.num_classes)
    versions = {"python": platform.python_version(), "numpy": np.__version__, **adapter.versions}
    log_line(
        f"benchmatrix: {config.framework} {config.model} on {adapter.device}, {params} params, "
        f"{len(x)} samples {x.shape[1:]}, {steps} steps/epoch of {config.global_batch} samples "
        f"({config.replicas} replicas × {config.batch_size}), versions {versions}"
    )

    recorder = Recorder(config.epochs)
    adapter.fit(x, data.y_train, config.global_batch, config.epochs, recorder)
    measured = throughput(recorder.epochs, config.warmup_steps)
    notes = list(adapter.notes) + notes
    if config.replicas > 1:
        notes.append(
            f"data-parallel over {config.replicas} replicas: global batch {config.global_batch} = "
            f"{config.batch_size} per replica × {config.replicas}; img/s counts all replicas' samples; "
            "inference is timed with the per-replica batch"
        )

    validation_accuracy = None
    if data.validation is not None:
        validation_accuracy = _accuracy(adapter, to_layout(data.validation[0], adapter), data.validation[1], config)
    if data.test is not None:
        evaluation = (to_layout(data.test[0], adapter), data.test[1])
    else:
        evaluation = (x, data.y_train)
        notes.append("no test split: inference timed on the training samples, no test accuracy")
    inference = measure_inference(adapter, *evaluation, config.batch_size)
    test_accuracy = inference.accuracy if data.test is not None else None
    log_line(
        f"train {measured.img_per_s:.1f} img/s after warm-up, inference {inference.img_per_s:.1f} img/s "
        f"(p50 {inference.latency_p50_ms:.2f} ms, p99 {inference.latency_p99_ms:.2f} ms per batch), "
        f"validation accuracy {validation_accuracy}, test accuracy {test_accuracy}"
    )

    if len(x) % config.global_batch:
        notes.append(f"last step of each epoch is a partial batch of {len(x) % config.global_batch}")
    return Result(
        framework=config.framework,
        versions=versions,
        model=config.model,
        dataset=config.dataset,
        device=adapter.device,
        params=params,
        batch_size=config.batch_size,
        epochs=config.epochs,
        samples_per_epoch=len(x),
        max_samples=config.max_samples,
        optimizer=config.optimizer,
        lr=config.lr,
        options=dict(adapter.options),
        warmup=Warmup(
            kind="steps",
            steps=config.warmup_steps,
            note=f"first {config.warmup_steps} steps of epoch 1 excluded from train_img_per_s",
        ),
        epoch_seconds=recorder.epoch_seconds,
        train_seconds=sum(recorder.epoch_seconds),
        train_img_per_s=measured.img_per_s,
        step_seconds_median=measured.step_seconds_median,
        final_loss=recorder.losses[-1],
        final_accuracy=recorder.accuracies[-1],
        test_accuracy=test_accuracy,
        inference_img_per_s=inference.img_per_s,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        seed=config.seed,
        test_samples=len(data.test[1]) if data.test is not None else 0,
        notes=notes,
        validation_accuracy=validation_accuracy,
        validation_samples=len(data.validation[1]) if data.validation is not None else 0,
        inference_latency_p50_ms=inference.latency_p50_ms,
        inference_latency_p99_ms=inference.latency_p99_ms,
        inference_batches=inference.batches,
        peak_device_memory_mb=adapter.peak_device_memory_mb(),
        epoch_losses=list(recorder.losses),
        replicas=config.replicas,
        global_batch_size=config.global_batch,
    )


def _accuracy(adapter: Adapter, x: np.ndarray, y: np.ndarray, config: RunConfig) -> float:
    size = config.batch_size
    scores = [adapter.predict_batch(x[start : start + size]) for start in range(0, len(x), size)]
    return float(np.mean(np.argmax(np.concatenate(scores), axis=1) == y))


def measure_inference(adapter: Adapter, x: np.ndarray, y: np.ndarray, batch_size: int) -> Inference:
    """Per-batch inference latency and img/s over ``x``, and its accuracy, after a warm-up.

    The warm-up runs one full batch and, if the split ends in a partial batch, one of
    that size too, so that no compilation for a new shape (XLA, inductor) is timed.
    Each batch's scores come back to the host before its clock stops.
    """
    adapter.predict_batch(x[:batch_size])
    remainder = len(x) % batch_size
    if remainder and len(x) > batch_size:
        adapter.predict_batch(x[-remainder:])
    latencies, scores = [], []
    for start in range(0, len(x), batch_size):
        began = time.perf_counter()
        scores.append(adapter.predict_batch(x[start : start + batch_size]))
        latencies.append(time.perf_counter() - began)
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    accuracy = float(np.mean(np.argmax(np.concatenate(scores), axis=1) == y))
    return Inference(len(x) / sum(latencies), float(p50), float(p99), len(latencies), accuracy)
