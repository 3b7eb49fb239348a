"""One training run: load data, let the adapter train, measure, build the result.

Everything measured the same way for every framework lives here (data preparation, input
placement, the warm-up rule, the timing checks, inference timing, accuracy, memory), so adapters
only build, place the data, train and predict.
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
from workloads.contract import DEFAULT_WARMUP_STEPS, DEFAULT_WINDOW_STEPS, suspect_note
from workloads.datasets import provenance, synthetic
from workloads.datasets import spec as dataset_spec
from workloads.datasets.selection import Selected, select
from workloads.errors import UsageError
from workloads.frameworks import Adapter, OptionValue, create
from workloads.models import InputSpec
from workloads.pairing import check_pairing
from workloads.replicas import usable_samples
from workloads.result import Result, TrainWindow, Warmup
from workloads.timing import (
    TEST_STEP_DELAY,
    TIMED_REGION,
    Recorder,
    Timing,
    analyse,
    injected_step_delay,
    log_line,
    steps_per_epoch,
    warmup_batches,
)

# With no `input` option, real data goes on the device when it needs at most this share of its memory.
DEVICE_SHARE = 0.25


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
    warmup_steps: int = DEFAULT_WARMUP_STEPS
    options: dict[str, OptionValue] = field(default_factory=dict)
    seed: int = 0
    replicas: int = 1
    generated_samples: Optional[int] = None
    window_steps: int = DEFAULT_WINDOW_STEPS

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


def resolve_input(given: OptionValue, generated: bool, split_bytes: int, adapter: Adapter) -> tuple[str, str]:
    """The ``input`` placement to use and a note saying why (the option, or the default's reason)."""
    if given is not None:
        return str(given), f"input {given} (option)"
    if adapter.device == "cpu":
        return "device", "input device (default): on a CPU the framework's tensors live in host memory"
    device_bytes = adapter.device_memory_bytes()
    if generated or device_bytes is None:
        why = "generated data" if generated else "the device's memory size is unknown"
        return "device", f"input device (default for {why})"
    share = f"{DEVICE_SHARE:.0%} of the device's {device_bytes / 2**30:.1f} GiB"
    if split_bytes <= DEVICE_SHARE * device_bytes:
        return "device", f"input device (default: the {split_bytes / 2**30:.2f} GiB split fits {share})"
    return "host", f"input host (default: the {split_bytes / 2**30:.2f} GiB split needs more than {share})"


def drop_remainder(data: Selected, global_batch: int, generated: bool) -> Optional[str]:
    """Leave out the split's last partial global batch, so every timed step has one shape; say so."""
    total = len(data.x_train)
    kept = total - total % global_batch
    if kept == 0:
        more = "raise --generated-samples" if generated else "use more samples (--max-samples)"
        raise UsageError(
            f"{total} training samples make no full step of {global_batch} samples (the global batch): "
            f"lower --batch-size, {more}, or set --option drop_remainder=false"
        )
    if kept == total:
        return None
    data.x_train, data.y_train = data.x_train[:kept], data.y_train[:kept]
    return (
        f"drop_remainder: {total - kept} of {total} training samples left out (the partial last batch), "
        f"so every step has {global_batch} samples"
    )


def run(config: RunConfig) -> Result:
    """Train and measure as ``config`` says; raise UsageError if it cannot be measured."""
    check_pairing(config.framework, config.model, config.dataset)
    model = models.get(config.model)
    generated = not dataset_spec(config.dataset).needs_files
    data = select(config.dataset, config.data_dir, config.max_samples, config.seed, config.generated_samples)
    origin = data_provenance(config)
    notes = list(data.notes)
    kept = usable_samples(len(data.x_train), config.replicas)
    if kept < len(data.x_train):
        notes.append(f"{len(data.x_train) - kept} training samples left out so every replica gets a share of each step")
        data.x_train, data.y_train = data.x_train[:kept], data.y_train[:kept]
    if config.options.get("drop_remainder", True):
        dropped = drop_remainder(data, config.global_batch, generated)
        notes += [dropped] if dropped else []
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
    where, input_note = resolve_input(config.options.get("input"), generated, data.x_train.nbytes, adapter)
    adapter.options["input"] = where
    x = to_layout(data.x_train, adapter)
    params = build(adapter, model, x.shape[1:], data.num_classes)
    steps = steps_per_epoch(len(x), config.global_batch)
    versions = {"python": platform.python_version(), "numpy": np.__version__, **adapter.versions}
    log_line(
        f"benchmatrix: {config.framework} {config.model} on {adapter.device}, {params} params, "
        f"{len(x)} samples {x.shape[1:]}, {steps} steps/epoch of {config.global_batch} samples "
        f"({config.replicas} replicas × {config.batch_size}), {input_note}, versions {versions}"
    )

    adapter.place(x, data.y_train, where)
    recorder = Recorder(config.epochs, config.window_steps, sync=adapter.synchronize)
    warm = warmup_batches(len(x), config.global_batch, config.warmup_steps)
    timing = train(adapter, warm, config.global_batch, config.epochs, recorder)
    notes = [input_note, *adapter.notes, *notes]
    if config.replicas > 1:
        notes.append(
            f"data-parallel over {config.replicas} replicas: global batch {config.global_batch} = "
            f"{config.batch_size} per replica × {config.replicas}; img/s counts all replicas' samples; "
            "inference is timed with the per-replica batch"
        )
    notes += [suspect_note(reason) for reason in timing.suspects]
    if delay := injected_step_delay():
        notes.append(f"test-only: {delay} s slept inside the clock at every step ({TEST_STEP_DELAY})")

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
        f"train {timing.img_per_s:.1f} img/s after {recorder.warmup_seconds:.2f} s of warm-up"
        f"{' (TIMING-SUSPECT)' if timing.suspect else ''}, inference {inference.img_per_s:.1f} img/s "
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
        warmup=_warmup(warm, recorder.warmup_seconds),
        epoch_seconds=recorder.epoch_seconds,
        train_seconds=sum(recorder.epoch_seconds),
        train_img_per_s=timing.img_per_s,
        step_seconds_median=timing.step_seconds_median,
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
        warmup_seconds=recorder.warmup_seconds,
        timing=_timing_fields(timing, config.window_steps),
        timing_suspect=timing.suspect,
        train_window=TrainWindow(recorder.wall_start or 0.0, recorder.wall_end or 0.0, timing.samples),
        data_provenance=origin.to_dict(),
    )


def data_provenance(config: RunConfig) -> provenance.Provenance:
    """Where the cell's data came from: generated here, or the folder's provenance checked against its files."""
    dataset = dataset_spec(config.dataset)
    if not dataset.needs_files or config.data_dir is None:
        return synthetic.provenance(config.dataset, config.generated_samples)
    return provenance.read(dataset.reader, config.data_dir)


def train(adapter: Adapter, warmup: list[int], batch_size: int, epochs: int, recorder: Recorder) -> Timing:
    """Warm up (untimed, every batch shape), train the timed epochs, and judge their timing."""
    recorder.begin_warmup()
    if warmup:
        adapter.warm_up(warmup)
    adapter.fit(batch_size, epochs, recorder)
    return analyse(recorder.epochs)


def _warmup(batch_sizes: list[int], seconds: float) -> Warmup:
    if not batch_sizes:
        return Warmup(kind="steps", steps=0, note="no warm-up: the first timed epoch includes any compilation")
    shapes = sorted(set(batch_sizes), reverse=True)
    return Warmup(
        kind="steps",
        steps=len(batch_sizes),
        note=(
            f"{len(batch_sizes)} untimed warm-up steps before the first timed epoch (batch sizes "
            f"{', '.join(map(str, shapes))}: every shape the epochs use), {seconds:.2f} s with compilation"
        ),
    )


def _timing_fields(timing: Timing, window_steps: int) -> dict[str, object]:
    return {
        "timed_region": TIMED_REGION,
        "window_steps": window_steps,
        "windows": timing.windows,
        "timed_steps": timing.steps,
        "timed_samples": timing.samples,
        "timed_seconds": timing.seconds,
        "epoch_seconds_measured": timing.epoch_seconds,
        "step_seconds_p10": timing.step_seconds_p10,
        "step_seconds_p90": timing.step_seconds_p90,
        "suspects": list(timing.suspects),
    }


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
