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

import numpy as np

from workloads.datasets.idx import load_idx_dataset, to_float
from workloads.errors import UsageError
from workloads.frameworks import Adapter, create
from workloads.result import Result, Warmup
from workloads.timing import Recorder, steps_per_epoch, throughput


@dataclass(frozen=True)
class RunConfig:
    """The CLI's arguments, validated."""

    framework: str
    model: str
    dataset: str
    data_dir: Path
    batch_size: int = 32
    epochs: int = 1
    optimizer: str = "adam"
    lr: float = 0.001
    max_samples: int | None = None
    warmup_steps: int = 10
    options: dict[str, bool | None] = field(default_factory=dict)
    seed: int = 0


def _log(line: str) -> None:
    print(line, flush=True)


def run(config: RunConfig) -> Result:
    """Train and measure as ``config`` says; raise UsageError if it cannot be measured."""
    train, test = load_idx_dataset(config.data_dir)
    if len(test) == 0:
        raise UsageError(f"{config.data_dir}: the test split is empty")
    # The cap takes the first N samples of a seeded shuffle, so every framework sees the same ones.
    order = np.random.default_rng(config.seed).permutation(len(train))[: config.max_samples]
    x, y = to_float(train.images[order]), train.labels[order]
    steps = steps_per_epoch(len(x), config.batch_size)
    if steps <= config.warmup_steps:
        raise UsageError(
            f"{len(x)} samples at batch size {config.batch_size} make {steps} steps per epoch, "
            f"too few to leave any after {config.warmup_steps} warm-up steps: "
            "raise --max-samples or lower --warmup-steps"
        )
    random.seed(config.seed)
    np.random.seed(config.seed)

    adapter = create(config.framework, config.options, lr=config.lr, seed=config.seed)
    params = adapter.build(config.model)
    versions = {"python": platform.python_version(), "numpy": np.__version__, **adapter.versions}
    _log(
        f"benchmatrix: {config.framework} {config.model} on {adapter.device}, {params} params, "
        f"{len(x)} samples, {steps} steps/epoch, versions {versions}"
    )

    recorder = Recorder(config.epochs)
    adapter.fit(x, y, config.batch_size, config.epochs, recorder)
    measured = throughput(recorder.epochs, config.warmup_steps)
    inference_img_per_s, test_accuracy = _measure_inference(
        adapter, to_float(test.images), test.labels, config.batch_size
    )
    _log(
        f"train {measured.img_per_s:.1f} img/s after warm-up, inference {inference_img_per_s:.1f} img/s, "
        f"test accuracy {test_accuracy:.4f}"
    )

    notes = list(adapter.notes)
    if len(x) % config.batch_size:
        notes.append(f"last step of each epoch is a partial batch of {len(x) % config.batch_size}")
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
        inference_img_per_s=inference_img_per_s,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        seed=config.seed,
        test_samples=len(test),
        notes=notes,
    )


def _measure_inference(adapter: Adapter, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, float]:
    """Inference img/s over the test split, and its accuracy, after a warm-up.

    The warm-up runs one full batch and, if the split ends in a partial batch, one of
    that size too, so that no compilation for a new shape (XLA, inductor) is timed.
    """
    adapter.predict(x[:batch_size], batch_size)
    remainder = len(x) % batch_size
    if remainder and len(x) > batch_size:
        adapter.predict(x[-remainder:], batch_size)
    start = time.perf_counter()
    scores = adapter.predict(x, batch_size)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(np.argmax(scores, axis=1) == y))
    return len(x) / seconds, accuracy
