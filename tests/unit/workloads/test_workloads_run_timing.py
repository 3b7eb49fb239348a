"""`workloads.run.run` end to end with a fake adapter of the real loops' shape, on a fake clock:
warm-up sized by the global batch, and the timed window carried through result.json to the energy
figure the host computes from it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orchestrator.backends.monitor import GpuSample, energy_joules
from orchestrator.run.result import train_window
from tests.unit.workloads.test_workloads_timing import AsyncDevice, FakeClock
from workloads import run as run_module
from workloads.contract import RunArgs, Training
from workloads.datasets.idx import write_sample
from workloads.result import TrainWindow, write_result
from workloads.run import RunConfig, run
from workloads.timing import Recorder

EPOCH_UNIX = 1_700_000_000.0  # the fake wall clock is the fake monotonic clock plus this
COMPILE_S = 30.0


class LoopShapedAdapter:
    """What torchloop, gluon and the Keras resident loop do, on a fake asynchronous device: warm-up
    steps then a synchronisation; per epoch a shuffle, ``start_epoch``, steps, ``stop_epoch``, then the
    loss read; inference returns scores at once."""

    channels_first = False

    def __init__(self, device: AsyncDevice) -> None:
        self.fake = device
        self.versions: dict[str, str] = {"fake": "1"}
        self.device = "cpu"
        self.options: dict[str, Any] = {}
        self.notes: list[str] = []
        self.warmed: list[int] = []
        self.samples = 0
        self.classes = 0

    def build(self, model: Any, inputs: Any) -> int:
        self.classes = inputs.num_classes
        return 1

    def place(self, x: np.ndarray, y: np.ndarray, where: str) -> None:
        self.samples = len(x)

    def warm_up(self, batch_sizes: list[int]) -> None:
        self.warmed = list(batch_sizes)
        for size in batch_sizes:
            self.fake.run_step(size)
        self.fake.synchronize()

    def fit(self, batch_size: int, epochs: int, recorder: Recorder) -> None:
        for _ in range(epochs):
            recorder.start_epoch()
            for start in range(0, self.samples, batch_size):
                size = min(batch_size, self.samples - start)
                self.fake.run_step(size)
                recorder.step(size)
            recorder.stop_epoch()
            self.fake.synchronize()
            recorder.end_epoch(0.5, 0.5)

    def synchronize(self) -> None:
        self.fake.synchronize()

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((len(x), self.classes), dtype=np.float32)

    def peak_device_memory_mb(self) -> None:
        return None

    def device_memory_bytes(self) -> None:
        return None


@pytest.fixture
def fake_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[LoopShapedAdapter, FakeClock, Path]:
    clock = FakeClock()
    adapter = LoopShapedAdapter(AsyncDevice(clock, sample_s=1e-3, compile_s=COMPILE_S, dispatch_s=1e-5))
    monkeypatch.setattr(run_module, "create", lambda *args, **kwargs: adapter)
    fake_recorder = functools.partial(Recorder, log=lambda _: None, clock=clock, wall=lambda: EPOCH_UNIX + clock.now)
    monkeypatch.setattr(run_module, "Recorder", fake_recorder)
    data = tmp_path / "fashion_mnist"
    write_sample(data, n_train=6400, n_test=64, seed=0)
    return adapter, clock, data


def _config(data: Path, replicas: int = 1, **given: Any) -> RunConfig:
    settings = {"batch_size": 16, "epochs": 2, "max_samples": 640, "warmup_steps": 3, **given}
    training = Training(framework="pytorch", model="mlp", dataset="fashion_mnist", **settings)
    return RunConfig(RunArgs(training, out=data / "unused.json", data_dir=data, replicas=replicas))


def test_warmup_trains_global_batches_when_there_are_replicas(fake_run) -> None:
    adapter, _, data = fake_run
    result = run(_config(data, replicas=4))  # 16 per replica × 4 = 64 per step
    assert adapter.warmed == [64, 64, 64]
    assert result.global_batch_size == 64 and result.timing["timed_steps"] == 2 * 10


def test_the_train_window_starts_after_warmup_so_energy_leaves_compilation_out(fake_run, tmp_path: Path) -> None:
    adapter, clock, data = fake_run
    result = run(_config(data, max_samples=6400, batch_size=64))  # epochs of 6.4 s on the fake device
    path = write_result(result, tmp_path / "result.json")
    window = train_window(path)
    assert window is not None and json.loads(path.read_text())["train_window"]["samples"] == 2 * 6400
    assert window.start_unix >= EPOCH_UNIX + COMPILE_S  # the compilation happened before it
    assert window.end_unix - window.start_unix == pytest.approx(2 * 6.4, rel=0.01)
    # A GPU drawing 400 W while compiling and 250 W while training, sampled every 0.7 s: the counter
    # is not linear, so reading it anywhere but at the window's edges gives another figure.
    times = np.arange(EPOCH_UNIX - 1.0, EPOCH_UNIX + clock.now + 2.0, 0.7)
    watts = np.where(times < window.start_unix, 400.0, 250.0)
    counter_j = np.concatenate(([0.0], np.cumsum(watts[:-1] * np.diff(times))))
    joules, how = energy_joules(_gpu(times, counter_j), window)
    assert "NVML's total-energy counter" in how
    assert joules == pytest.approx(250.0 * (window.end_unix - window.start_unix), rel=0.02)


def test_energy_reads_the_counter_at_the_window_edges_not_at_the_samples_before_them() -> None:
    # Samples at 0, 10, 20, 30 s; 100 W, then 500 W, then 100 W: a counter with two bends.
    times = np.array([0.0, 10.0, 20.0, 30.0]) + EPOCH_UNIX
    counter_j = np.array([0.0, 1000.0, 6000.0, 7000.0])
    window = TrainWindow(EPOCH_UNIX + 5.0, EPOCH_UNIX + 28.0, 1)
    joules, _ = energy_joules(_gpu(times, counter_j), window)
    assert joules == pytest.approx(500.0 + 5000.0 + 800.0)  # 5 s at 100 W, 10 s at 500 W, 8 s at 100 W
    # (the last sample before each edge gives 6000 - 0, the first after it 7000 - 1000)


def _gpu(times: np.ndarray, counter_j: np.ndarray) -> list[GpuSample]:
    return [
        GpuSample(
            t_s=float(t - times[0]), device=0, util_pct=90.0, mem_used_mb=1.0, power_w=0.0, sm_clock_mhz=1.0,
            temp_c=50.0, unix_s=float(t), energy_mj=float(j) * 1000.0,
        )
        for t, j in zip(times, counter_j)
    ]  # fmt: skip
