"""Timing windows, warm-up and the self-checks of a training run.

Accelerators run asynchronously: a step call returns once its kernels are queued, so a clock read
after each call measures the dispatch rate, and a synchronisation after each step stalls the
pipeline the framework relies on. So the clock is read only at the end of a **window** of K steps,
right after one synchronisation (``sync``), and at epoch ends; per-step figures are window means.
Warm-up is a separate, untimed phase before the first timed epoch that trains every batch shape the
epochs will use (tf_cnn_benchmarks' warm-up batches), so no compilation lands in a window; its
length is kept as ``warmup_seconds`` so compile cost is shown beside img/s instead of hidden in it.

Each epoch's windows follow one another from its clock's start to its end, so their sum is the epoch's
time by construction: the windows can be trusted only as far as ``sync`` really waits, which a spy
proves for each adapter in its image (tests/integration/test_timing_spies.py). What the clock can
check is marked timing-suspect: a window whose mean step took more than ``SUSPECT_FACTOR`` × the median
(a compilation or stall after warm-up). The spread of the windows' step times (10th and 90th
percentiles) is recorded beside the median: on a shared 2-vCPU machine it is wide, which is no fault.
(An earlier check compared the epochs with steps × median step time; since the windows add up to the
epochs, that only measured the spread's skew and flagged honest MXNet cells on a quiet machine.)
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from workloads.contract import DEFAULT_WINDOW_STEPS
from workloads.errors import RequestError
from workloads.replicas import is_primary

SUSPECT_FACTOR = 10.0
TIMED_REGION = (
    "training steps only: each epoch's clock starts after its shuffle and after the device is synchronised, "
    "and the clock is read once per window of steps after one synchronisation"
)


@dataclass(frozen=True)
class Window:
    """Steps timed together: their count, samples and seconds from the previous clock reading."""

    steps: int
    samples: int
    seconds: float


@dataclass
class EpochTiming:
    start: float
    windows: list[Window] = field(default_factory=list)
    end: Optional[float] = None

    @property
    def steps(self) -> int:
        return sum(window.steps for window in self.windows)


@dataclass(frozen=True)
class Timing:
    """What the clock says about the timed epochs, and what is suspect about it."""

    img_per_s: float
    seconds: float
    samples: int
    steps: int
    windows: int
    step_seconds_median: float
    step_seconds_p10: float
    step_seconds_p90: float
    epoch_seconds: float
    suspects: tuple[str, ...]

    @property
    def suspect(self) -> bool:
        return bool(self.suspects)


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Steps in an epoch that keeps its last, partial batch (drop the remainder first to avoid one)."""
    return math.ceil(samples / batch_size)


def warmup_batches(samples: int, batch_size: int, steps: int) -> list[int]:
    """Batch sizes of the warm-up: ``steps`` full batches, then one of every other size the timed epochs
    use (the partial last batch), so each shape is compiled before any clock runs."""
    if steps == 0:
        return []
    sizes = [min(batch_size, samples)] * steps
    remainder = samples % batch_size
    if remainder and samples > batch_size and remainder not in sizes:
        sizes.append(remainder)
    return sizes


def warmup_indices(batch_sizes: list[int], samples: int) -> list[np.ndarray]:
    """Sample indices of each warm-up step: consecutive, wrapping at the split's end."""
    steps, position = [], 0
    for size in batch_sizes:
        steps.append((position + np.arange(size)) % samples)
        position = (position + size) % samples
    return steps


# Test-only: the real-engine bisect test slows one version's image down by this many seconds per step.
# Honoured only when TEST_HOOKS is "1" as well, so no stray variable ever slows a real run; the catalog
# refuses both unless the orchestrator itself runs with TEST_HOOKS=1, and a delayed result says so.
TEST_PREFIX = "BENCHMATRIX_TEST_"
TEST_HOOKS = TEST_PREFIX + "HOOKS"
TEST_STEP_DELAY = TEST_PREFIX + "STEP_DELAY_S"


def injected_step_delay() -> float:
    """Seconds to sleep per training step: 0 unless the test hooks are on."""
    if os.environ.get(TEST_HOOKS) != "1":
        return 0.0
    text = os.environ.get(TEST_STEP_DELAY, "0")
    try:
        return float(text)
    except ValueError:
        raise RequestError(f"{TEST_STEP_DELAY}={text!r}: expected seconds, a number") from None


def log_line(line: str) -> None:
    """Print a progress line, from the first replica's process only."""
    if is_primary():
        print(line, flush=True)


def _no_sync() -> None:
    """Synchronous frameworks (and Keras's fit, which materialises its logs at epoch ends) need none."""


class Recorder:
    """The clock of one training run: warm-up start, epochs, and windows of ``window_steps`` steps.

    ``sync`` waits until the device has finished all queued work; it runs before each epoch's clock
    starts and before each window's clock is read, and nowhere else.
    """

    def __init__(
        self,
        epochs: int,
        window_steps: int = DEFAULT_WINDOW_STEPS,
        sync: Callable[[], None] = _no_sync,
        log: Callable[[str], None] = log_line,
        clock: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.epochs: list[EpochTiming] = []
        self.losses: list[float] = []
        self.accuracies: list[float] = []
        self.window_steps = window_steps
        self.sync = sync
        self.warmup_start: Optional[float] = None
        self.wall_start: Optional[float] = None  # unix time of the first timed epoch's start
        self.wall_end: Optional[float] = None  # and of the last timed epoch's end
        self._total = epochs
        self._log = log
        self._clock = clock
        self._wall = wall
        self._window_start = 0.0
        self._pending_steps = 0
        self._pending_samples = 0
        self._step_delay = injected_step_delay()

    def begin_warmup(self) -> None:
        """Training starts (its warm-up first): ``warmup_seconds`` counts from here."""
        self.warmup_start = self._clock()

    def start_epoch(self) -> None:
        self.sync()
        now = self._clock()
        if self.wall_start is None:
            self.wall_start = self._wall()
        self.epochs.append(EpochTiming(start=now))
        self._window_start = now
        self._pending_steps = self._pending_samples = 0

    def step(self, samples: int) -> None:
        """One training step was dispatched; every ``window_steps`` steps the window closes."""
        if self._step_delay:
            time.sleep(self._step_delay)
        self._pending_steps += 1
        self._pending_samples += samples
        if self._pending_steps == self.window_steps:
            self.close_window()

    def close_window(self) -> None:
        """Synchronise, then time the steps dispatched since the last clock reading."""
        if self._pending_steps == 0:
            return
        self.sync()
        self.record_window(self._pending_steps, self._pending_samples)
        self._pending_steps = self._pending_samples = 0

    def record_window(self, steps: int, samples: int) -> None:
        """Time ``steps`` steps that the framework has already finished (Keras: a whole epoch of fit)."""
        now = self._clock()
        self.epochs[-1].windows.append(Window(steps, samples, now - self._window_start))
        self._window_start = now

    def stop_epoch(self) -> None:
        """The epoch's last step was dispatched: close its window and stop its clock, before any
        bookkeeping (reading the epoch's loss and accuracy) that is not training."""
        self.close_window()
        self.epochs[-1].end = self._clock()
        self.wall_end = self._wall()

    def end_epoch(self, loss: float, accuracy: float) -> None:
        """Record the epoch's loss and accuracy (stopping its clock first unless ``stop_epoch`` did)."""
        epoch = self.epochs[-1]
        if epoch.end is None:
            self.stop_epoch()
        assert epoch.end is not None  # stop_epoch sets it
        self.losses.append(float(loss))
        self.accuracies.append(float(accuracy))
        self._log(
            f"epoch {len(self.epochs)}/{self._total}: {epoch.end - epoch.start:.3f} s, "
            f"{epoch.steps} steps, loss {loss:.4f}, accuracy {accuracy:.4f}"
        )

    @property
    def epoch_seconds(self) -> list[float]:
        return [e.end - e.start for e in self.epochs if e.end is not None]

    @property
    def warmup_seconds(self) -> float:
        """From the start of training to the first timed step: warm-up steps, compilation, first sync."""
        if self.warmup_start is None or not self.epochs:
            return 0.0
        return self.epochs[0].start - self.warmup_start


def analyse(epochs: Sequence[EpochTiming]) -> Timing:
    """img/s of the timed windows, their median step time, and every reason to distrust them."""
    windows = [window for epoch in epochs for window in epoch.windows]
    if not windows:
        raise ValueError("no timed training steps")
    seconds = sum(window.seconds for window in windows)
    samples = sum(window.samples for window in windows)
    if seconds <= 0:
        raise ValueError(f"measured {seconds} s for {samples} samples: clock did not advance")
    per_step = [window.seconds / window.steps for window in windows]
    median = statistics.median(per_step)
    p10, p90 = np.percentile(per_step, [10, 90])
    measured = sum(epoch.end - epoch.start for epoch in epochs if epoch.end is not None)
    return Timing(
        img_per_s=samples / seconds,
        seconds=seconds,
        samples=samples,
        steps=sum(window.steps for window in windows),
        windows=len(windows),
        step_seconds_median=median,
        step_seconds_p10=float(p10),
        step_seconds_p90=float(p90),
        epoch_seconds=measured,
        suspects=tuple(_slow_windows(epochs, median)),
    )


def _slow_windows(epochs: Sequence[EpochTiming], median: float) -> list[str]:
    found = []
    for number, epoch in enumerate(epochs, start=1):
        first = 1
        for window in epoch.windows:
            per_step = window.seconds / window.steps
            if per_step > SUSPECT_FACTOR * median:
                steps = f"step {first}" if window.steps == 1 else f"steps {first}-{first + window.steps - 1}"
                found.append(
                    f"epoch {number}, {steps}: {per_step:.4g} s per step, over {SUSPECT_FACTOR:g}× the median "
                    f"{median:.4g} s ({window.seconds:.3f} s in all): a compilation or stall after warm-up"
                )
            first += window.steps
    return found
