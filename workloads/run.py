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
from workloads.contract import RunArgs, Training, suspect_note
from workloads.datasets import provenance, synthetic
from workloads.datasets import spec as dataset_spec
from workloads.datasets.selection import Selected, select
from workloads.errors import RequestError
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
    """``run``'s arguments with the framework's options parsed and checked."""

    args: RunArgs
    options: dict[str, OptionValue] = field(default_factory=dict)

    @property
    def training(self) -> Training:
        return self.args.training


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
        raise RequestError(
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


@dataclass(frozen=True)
class Trained:
    """A model trained and timed: what the result reports of its training."""

    adapter: Adapter
    x: np.ndarray
    params: int
    versions: dict[str, str]
    warmup: list[int]
    recorder: Recorder
    timing: Timing


@dataclass(frozen=True)
class Evaluated:
    """Accuracy and inference after training, and the sizes of the splits they used."""

    inference: Inference
    validation_accuracy: Optional[float]
    validation_samples: int
    test_accuracy: Optional[float]
    test_samples: int


def run(config: RunConfig) -> Result:
    """Train and measure as ``config`` says; raise RequestError if it cannot be measured."""
    training = config.training
    check_pairing(training.framework, training.model, training.dataset)
    generated = not dataset_spec(training.dataset).needs_files
    data = select(
        training.dataset, config.args.data_dir, training.max_samples, config.args.seed, training.generated_samples
    )
    origin = data_provenance(training, config.args.data_dir)
    data_notes = prepare(data, config, generated)
    adapter, input_note = make_adapter(config, data, generated)
    trained = train_model(config, data, adapter, input_note)
    notes = [input_note, *adapter.notes, *data_notes, *training_notes(config, trained.timing)]
    evaluated = evaluate(adapter, data, trained.x, training.batch_size)
    log_line(summary_line(trained, evaluated))
    if data.test is None:
        notes.append("no test split: inference timed on the training samples, no test accuracy")
    if len(trained.x) % config.args.global_batch:
        notes.append(f"last step of each epoch is a partial batch of {len(trained.x) % config.args.global_batch}")
    return result(config, trained, evaluated, notes, origin)


def prepare(data: Selected, config: RunConfig, generated: bool) -> list[str]:
    """Trim the training split so every replica gets a share of each step and, unless the
    ``drop_remainder`` option is off, every step is full; say what was left out."""
    notes = list(data.notes)
    kept = usable_samples(len(data.x_train), config.args.replicas)
    if kept < len(data.x_train):
        notes.append(f"{len(data.x_train) - kept} training samples left out so every replica gets a share of each step")
        data.x_train, data.y_train = data.x_train[:kept], data.y_train[:kept]
    if config.options.get("drop_remainder", True):
        dropped = drop_remainder(data, config.args.global_batch, generated)
        notes += [dropped] if dropped else []
    return notes


def make_adapter(config: RunConfig, data: Selected, generated: bool) -> tuple[Adapter, str]:
    """The seeded adapter with its input placement decided, and the note saying why that placement."""
    random.seed(config.args.seed)
    np.random.seed(config.args.seed)
    training = config.training
    adapter = create(
        training.framework,
        config.options,
        lr=training.lr,
        seed=config.args.seed,
        optimizer=training.optimizer,
        replicas=config.args.replicas,
    )
    where, input_note = resolve_input(config.options.get("input"), generated, data.x_train.nbytes, adapter)
    adapter.options["input"] = where
    return adapter, input_note


def train_model(config: RunConfig, data: Selected, adapter: Adapter, input_note: str) -> Trained:
    """Build the model, place the data, warm up and train the timed epochs."""
    training, batch = config.training, config.args.global_batch
    x = to_layout(data.x_train, adapter)
    params = build(adapter, models.get(training.model), x.shape[1:], data.num_classes)
    versions = {"python": platform.python_version(), "numpy": np.__version__, **adapter.versions}
    log_line(
        f"benchmatrix: {training.framework} {training.model} on {adapter.device}, {params} params, "
        f"{len(x)} samples {x.shape[1:]}, {steps_per_epoch(len(x), batch)} steps/epoch of {batch} samples "
        f"({config.args.replicas} replicas × {training.batch_size}), {input_note}, versions {versions}"
    )
    adapter.place(x, data.y_train, str(adapter.options["input"]))
    recorder = Recorder(training.epochs, config.args.window_steps, sync=adapter.synchronize)
    warm = warmup_batches(len(x), batch, training.warmup_steps)
    timing = train(adapter, warm, batch, training.epochs, recorder)
    return Trained(adapter, x, params, versions, warm, recorder, timing)


def training_notes(config: RunConfig, timing: Timing) -> list[str]:
    """What a reader of the figures must know about how training ran: replicas, suspects, test hooks."""
    notes = []
    if config.args.replicas > 1:
        notes.append(
            f"data-parallel over {config.args.replicas} replicas: global batch {config.args.global_batch} = "
            f"{config.training.batch_size} per replica × {config.args.replicas}; img/s counts all replicas' samples; "
            "inference is timed with the per-replica batch"
        )
    notes += [suspect_note(reason) for reason in timing.suspects]
    if delay := injected_step_delay():
        notes.append(f"test-only: {delay} s slept inside the clock at every step ({TEST_STEP_DELAY})")
    return notes


def evaluate(adapter: Adapter, data: Selected, x: np.ndarray, batch_size: int) -> Evaluated:
    """Validation accuracy, then inference over the test split (the training samples where there is none)."""
    validation_accuracy = None
    if data.validation is not None:
        validation_accuracy = _accuracy(adapter, to_layout(data.validation[0], adapter), data.validation[1], batch_size)
    if data.test is not None:
        inference = measure_inference(adapter, to_layout(data.test[0], adapter), data.test[1], batch_size)
    else:
        inference = measure_inference(adapter, x, data.y_train, batch_size)
    return Evaluated(
        inference=inference,
        validation_accuracy=validation_accuracy,
        validation_samples=len(data.validation[1]) if data.validation is not None else 0,
        test_accuracy=inference.accuracy if data.test is not None else None,
        test_samples=len(data.test[1]) if data.test is not None else 0,
    )


def summary_line(trained: Trained, evaluated: Evaluated) -> str:
    timing, inference = trained.timing, evaluated.inference
    return (
        f"train {timing.img_per_s:.1f} img/s after {trained.recorder.warmup_seconds:.2f} s of warm-up"
        f"{' (TIMING-SUSPECT)' if timing.suspect else ''}, inference {inference.img_per_s:.1f} img/s "
        f"(p50 {inference.latency_p50_ms:.2f} ms, p99 {inference.latency_p99_ms:.2f} ms per batch), "
        f"validation accuracy {evaluated.validation_accuracy}, test accuracy {evaluated.test_accuracy}"
    )


def result(
    config: RunConfig, trained: Trained, evaluated: Evaluated, notes: list[str], origin: provenance.Provenance
) -> Result:
    """The result document of a trained and evaluated run."""
    training, recorder, timing = config.training, trained.recorder, trained.timing
    return Result(
        framework=training.framework,
        versions=trained.versions,
        model=training.model,
        dataset=training.dataset,
        device=trained.adapter.device,
        params=trained.params,
        batch_size=training.batch_size,
        epochs=training.epochs,
        samples_per_epoch=len(trained.x),
        max_samples=training.max_samples,
        optimizer=training.optimizer,
        lr=training.lr,
        options=dict(trained.adapter.options),
        warmup=_warmup(trained.warmup, recorder.warmup_seconds),
        epoch_seconds=recorder.epoch_seconds,
        train_seconds=sum(recorder.epoch_seconds),
        train_img_per_s=timing.img_per_s,
        step_seconds_median=timing.step_seconds_median,
        final_loss=recorder.losses[-1],
        final_accuracy=recorder.accuracies[-1],
        test_accuracy=evaluated.test_accuracy,
        inference_img_per_s=evaluated.inference.img_per_s,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        seed=config.args.seed,
        test_samples=evaluated.test_samples,
        notes=notes,
        validation_accuracy=evaluated.validation_accuracy,
        validation_samples=evaluated.validation_samples,
        inference_latency_p50_ms=evaluated.inference.latency_p50_ms,
        inference_latency_p99_ms=evaluated.inference.latency_p99_ms,
        inference_batches=evaluated.inference.batches,
        peak_device_memory_mb=trained.adapter.peak_device_memory_mb(),
        epoch_losses=list(recorder.losses),
        replicas=config.args.replicas,
        global_batch_size=config.args.global_batch,
        warmup_seconds=recorder.warmup_seconds,
        timing=_timing_fields(timing, config.args.window_steps),
        timing_suspect=timing.suspect,
        train_window=TrainWindow(recorder.wall_start or 0.0, recorder.wall_end or 0.0, timing.samples),
        data_provenance=origin.to_dict(),
    )


def data_provenance(training: Training, data_dir: Optional[Path]) -> provenance.Provenance:
    """Where the cell's data came from: generated here, or the folder's provenance checked against its files."""
    dataset = dataset_spec(training.dataset)
    if not dataset.needs_files or data_dir is None:
        return synthetic.provenance(training.dataset, training.generated_samples)
    return provenance.read(dataset.reader, data_dir)


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


def _accuracy(adapter: Adapter, x: np.ndarray, y: np.ndarray, size: int) -> float:
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
