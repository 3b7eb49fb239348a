"""Step timestamps and the throughput maths of a training run.

Adapters call ``Recorder.step`` once per training step, after the step's result has been
synchronised to the host, so each timestamp marks work the device has really finished.
Throughput is derived from those timestamps alone: the first ``warmup`` steps of epoch 1
(graph tracing, XLA/inductor compilation, allocator growth) are left out, and so is any
time between one epoch's end and the next one's start.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from workloads.replicas import is_primary


@dataclass
class EpochSteps:
    """Timestamps of one epoch: its start, the end of each step and each step's samples."""

    start: float
    ends: list[float] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    end: float | None = None


@dataclass(frozen=True)
class Throughput:
    """Training throughput measured after the warm-up steps."""

    img_per_s: float
    seconds: float
    samples: int
    step_seconds_median: float


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Number of steps in an epoch when the last, partial batch is kept (as Keras does)."""
    return math.ceil(samples / batch_size)


def step_samples(samples: int, batch_size: int, step: int) -> int:
    """Samples in step ``step`` (0-based) of an epoch of ``samples`` samples."""
    return min(batch_size, samples - step * batch_size)


def throughput(epochs: Sequence[EpochSteps], warmup: int) -> Throughput:
    """Samples per second from the end of step ``warmup`` of epoch 1 to the last step.

    Each later epoch counts from its own start, so work done between epochs (such as
    an evaluation) is not charged to training. With ``warmup == 0`` epoch 1 counts from
    its start too.
    """
    if not epochs or len(epochs[0].ends) <= warmup:
        steps = len(epochs[0].ends) if epochs else 0
        raise ValueError(f"{steps} steps in epoch 1 leave none after {warmup} warm-up steps")
    durations: list[float] = []
    samples = 0
    for index, epoch in enumerate(epochs):
        skip = warmup if index == 0 else 0
        marks = [epoch.start, *epoch.ends][skip:]
        durations += [later - earlier for earlier, later in zip(marks, marks[1:])]
        samples += sum(epoch.samples[skip:])
    seconds = sum(durations)
    if seconds <= 0:
        raise ValueError(f"measured {seconds} s for {samples} samples: clock did not advance")
    return Throughput(samples / seconds, seconds, samples, statistics.median(durations))


def log_line(line: str) -> None:
    """Print a progress line, from the first replica's process only."""
    if is_primary():
        print(line, flush=True)


class Recorder:
    """Collects step timestamps and per-epoch metrics, and logs one line per epoch."""

    def __init__(
        self,
        epochs: int,
        log: Callable[[str], None] = log_line,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.epochs: list[EpochSteps] = []
        self.losses: list[float] = []
        self.accuracies: list[float] = []
        self._total = epochs
        self._log = log
        self._clock = clock

    def start_epoch(self) -> None:
        self.epochs.append(EpochSteps(start=self._clock()))

    def step(self, samples: int) -> None:
        """Mark the end of a synchronised training step of ``samples`` samples."""
        epoch = self.epochs[-1]
        epoch.ends.append(self._clock())
        epoch.samples.append(samples)

    def end_epoch(self, loss: float, accuracy: float) -> None:
        epoch = self.epochs[-1]
        epoch.end = self._clock()
        self.losses.append(float(loss))
        self.accuracies.append(float(accuracy))
        self._log(
            f"epoch {len(self.epochs)}/{self._total}: {epoch.end - epoch.start:.3f} s, "
            f"{len(epoch.ends)} steps, loss {loss:.4f}, accuracy {accuracy:.4f}"
        )

    @property
    def epoch_seconds(self) -> list[float]:
        return [e.end - e.start for e in self.epochs if e.end is not None]
