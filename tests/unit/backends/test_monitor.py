"""Monitoring maths with a fake NVML and recorded engine stats (the real ones need a GPU / engine)."""

from __future__ import annotations

import csv
import time
from types import SimpleNamespace

import pynvml
import pytest

from orchestrator.backends.monitor import (
    CONTAINER_SERIES,
    GPU_SERIES,
    CellMonitor,
    ContainerSample,
    GpuSample,
    Nvml,
    cpu_percent,
    energy_joules,
    memory_used_mb,
    open_nvml,
    window_metrics,
)
from workloads.result import TrainWindow

MB = 1024 * 1024


class FakeNvml:
    """The pynvml calls the sampler makes, answering from a table per device; counts init/shutdown."""

    NVML_CLOCK_SM = pynvml.NVML_CLOCK_SM
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU

    def __init__(self, devices: dict[int, list[dict]], fail_init: bool = False) -> None:
        self.devices = devices
        self.reads = {index: 0 for index in devices}
        self.fail_init = fail_init
        self.open = 0

    def nvmlInit(self):
        if self.fail_init:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        self.open += 1

    def nvmlShutdown(self):
        self.open -= 1

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def _now(self, handle):
        series = self.devices[handle]
        return series[min(self.reads[handle], len(series) - 1)]

    def nvmlDeviceGetUtilizationRates(self, handle):
        return SimpleNamespace(gpu=self._now(handle)["util"], memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=self._now(handle)["mem_mb"] * MB, total=80 * 1024 * MB)

    def nvmlDeviceGetPowerUsage(self, handle):
        return self._now(handle)["power_mw"]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if "energy_mj" not in self._now(handle):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return self._now(handle)["energy_mj"]

    def nvmlDeviceGetClockInfo(self, handle, clock):
        assert clock == pynvml.NVML_CLOCK_SM
        return self._now(handle)["sm_mhz"]

    def nvmlDeviceGetTemperature(self, handle, sensor):
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._now(handle)["temp"]

    def nvmlDeviceGetMaxClockInfo(self, handle, clock):
        assert clock == pynvml.NVML_CLOCK_SM
        return 1980

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        """pynvml's c_nvmlProcessInfo_t fields; usedGpuMemory in bytes (None where NVML cannot tell)."""
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=None if mb is None else int(mb * MB), gpuInstanceId=0xFFFFFFFF,
                            computeInstanceId=0xFFFFFFFF)
            for pid, mb in self._now(handle).get("processes", [])
        ]  # fmt: skip

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        value = self._now(handle).get("throttle", pynvml.nvmlClocksThrottleReasonNone)
        self.reads[handle] += 1  # the last call of a read: move on to the next sample
        return value


def reading(util, mem_mb=1000, power_mw=250_000, sm_mhz=1980, temp=60, **extra):
    return {"util": util, "mem_mb": mem_mb, "power_mw": power_mw, "sm_mhz": sm_mhz, "temp": temp, **extra}


def test_nvml_read_converts_units():
    fake = FakeNvml({0: [reading(97, mem_mb=2048, power_mw=312_500, sm_mhz=1755, temp=71, energy_mj=5_000)]})
    sample = Nvml(fake).read(0, t_s=1.5, unix_s=1e9)
    assert (sample.util_pct, sample.mem_used_mb, sample.power_w, sample.sm_clock_mhz, sample.temp_c) == (
        97.0,
        2048.0,
        312.5,
        1755.0,
        71.0,
    )
    assert sample.device == 0 and sample.t_s == 1.5 and sample.unix_s == 1e9 and sample.energy_mj == 5000.0
    assert Nvml(FakeNvml({0: [reading(1)]})).read(0, 0.0, 0.0).energy_mj is None  # no counter before Volta


def test_without_nvml_the_reason_is_one_line_and_nothing_raises():
    nvml, note = open_nvml(FakeNvml({}, fail_init=True))
    assert nvml is None
    assert note.startswith("NVML unavailable (") and "container CPU/memory only" in note and "\n" not in note


def test_cpu_percent_is_the_docker_stats_formula():
    previous = {"cpu_usage": {"total_usage": 1_000_000_000}, "system_cpu_usage": 10_000_000_000, "online_cpus": 2}
    current = {"cpu_usage": {"total_usage": 1_500_000_000}, "system_cpu_usage": 12_000_000_000, "online_cpus": 2}
    # 0.5 s of container CPU time while the host's 2 CPUs did 2 s in all (1 s of wall time): half of one CPU
    assert cpu_percent(current, previous) == pytest.approx(50.0)
    assert cpu_percent(current, current) is None  # no host time elapsed
    assert cpu_percent({}, previous) is None  # an exited container's empty stats


def test_memory_used_excludes_reclaimable_cache_on_cgroup_v1_and_v2():
    v1 = {"usage": 300 * MB, "stats": {"total_inactive_file": 100 * MB, "inactive_file": 1}}
    v2 = {"usage": 300 * MB, "stats": {"inactive_file": 50 * MB}}
    assert memory_used_mb(v1) == 200.0
    assert memory_used_mb(v2) == 250.0
    assert memory_used_mb({}) is None


class FakeContainer:
    """Engine one-shot stats: 25 % of 2 CPUs more CPU time per reading, memory rising by 10 MB."""

    def __init__(self) -> None:
        self.calls = 0

    def stats(self, stream, one_shot):
        assert stream is False and one_shot is True
        self.calls += 1
        return {
            "cpu_stats": {
                "cpu_usage": {"total_usage": self.calls * 250_000_000},
                "system_cpu_usage": self.calls * 1_000_000_000,
                "online_cpus": 2,
            },
            "memory_stats": {"usage": (100 + 10 * self.calls) * MB, "stats": {"total_inactive_file": 0}},
        }


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the sampler took no samples"
        time.sleep(0.01)


def test_cell_monitor_summarises_every_device_and_writes_the_series(tmp_path):
    fake = FakeNvml({0: [reading(100), reading(80)], 1: [reading(60), reading(40)]})
    container = FakeContainer()
    with CellMonitor(container, (0, 1), hz=50, out_dir=tmp_path, nvml_module=fake) as monitor:
        wait_for(lambda: len(monitor.stats) >= 3 and all(n >= 2 for n in fake.reads.values()))
    assert fake.open == 0  # NVML shut down again
    metrics = {m.name: (m.value, m.unit) for m in monitor.metrics()}
    n = len(monitor.gpu) // 2
    expected_util = [100, 60] + [80, 40] * (n - 1)  # device 0 then 1 per tick, the series then stays flat
    assert metrics["gpu_util_pct_max"] == (100.0, "%")
    assert metrics["gpu_util_pct_mean"][0] == pytest.approx(sum(expected_util) / len(expected_util))
    assert metrics["gpu_power_w_mean"] == (250.0, "W")
    assert metrics["gpu_temp_c_p95"] == (60.0, "C")
    assert metrics["container_cpu_pct_mean"][0] == pytest.approx(50.0)  # 0.25 / 1.0 × 2 CPUs
    assert metrics["container_mem_used_mb_max"][0] == pytest.approx(100 + 10 * len(monitor.stats))
    with (tmp_path / GPU_SERIES).open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["device"] for row in rows} == {"0", "1"} and len(rows) == len(monitor.gpu)
    with (tmp_path / CONTAINER_SERIES).open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["cpu_pct"] == "" and float(rows[1]["cpu_pct"]) == pytest.approx(50.0)


def test_cell_monitor_without_nvml_keeps_container_figures_and_notes_why(tmp_path):
    with CellMonitor(FakeContainer(), (0,), hz=50, out_dir=tmp_path, nvml_module=FakeNvml({}, True)) as monitor:
        wait_for(lambda: len(monitor.stats) >= 2)
    names = {m.name for m in monitor.metrics()}
    assert "container_cpu_pct_mean" in names and not any(name.startswith("gpu_") for name in names)
    assert monitor.notes[0].startswith("NVML unavailable")
    assert monitor.notes[1] == "monitoring summaries cover the container's whole life (no training window to align)"
    assert not (tmp_path / GPU_SERIES).exists()


def test_cpu_cells_do_not_touch_nvml(tmp_path):
    fake = FakeNvml({0: [reading(1)]})
    with CellMonitor(FakeContainer(), (), hz=50, out_dir=tmp_path, nvml_module=fake) as monitor:
        wait_for(lambda: len(monitor.stats) >= 1)
    assert fake.reads == {0: 0} and monitor.notes == []


def gpu_series(device, times, util, power_w, energy_j=None):
    """One GPU's samples at unix times ``times``; energy_j gives the counter in J where there is one."""
    return [
        GpuSample(
            t_s=t - times[0], device=device, util_pct=u, mem_used_mb=1000.0, power_w=w, sm_clock_mhz=1980.0,
            temp_c=60.0, unix_s=t, energy_mj=None if energy_j is None else energy_j[i] * 1000.0,
        )
        for i, (t, u, w) in enumerate(zip(times, util, power_w))
    ]  # fmt: skip


def test_summaries_cover_the_training_window_only():
    # 10 s of loading and compiling at 5 % utilisation, 20 s of training at 95 %, 5 s of evaluation at 30 %.
    times = [1000.0 + t for t in range(36)]
    util = [5.0] * 10 + [95.0] * 21 + [30.0] * 5
    gpu = gpu_series(0, times, util, [100.0] * 36)
    stats = [ContainerSample(t - 1000.0, 50.0, 2000.0, t) for t in times]
    window = TrainWindow(1010.0, 1030.0, samples=40_000)
    metrics, notes = window_metrics(gpu, stats, window)
    values = {m.name: m.value for m in metrics}
    assert values["gpu_util_pct_mean"] == 95.0 and values["gpu_util_pct_max"] == 95.0
    assert notes == ["monitoring summaries cover the 20.0 s timed training window"]
    whole, notes = window_metrics(gpu, stats, None)
    assert {m.name: m.value for m in whole}["gpu_util_pct_mean"] == pytest.approx(sum(util) / 36)
    assert notes == ["monitoring summaries cover the container's whole life (no training window to align)"]


def test_energy_comes_from_the_counter_across_the_window():
    times = [1000.0 + t for t in range(0, 31, 2)]  # a sample every 2 s
    counter = [300.0 * (t - 1000.0) for t in times]  # a steady 300 W
    power = [50.0] * len(times)  # sampled power disagrees: the counter wins
    joules, how = energy_joules(
        gpu_series(0, times, [90.0] * len(times), power, counter)
        + gpu_series(1, times, [90.0] * len(times), power, counter),
        TrainWindow(1005.0, 1025.0, samples=10_000),
    )
    assert joules == pytest.approx(2 * 300.0 * 20.0)  # two GPUs, window edges interpolated between samples
    assert how == "energy over the 20.0 s training window from NVML's total-energy counter"


def test_energy_integrates_sampled_power_where_there_is_no_counter():
    times = [1000.0 + t for t in range(31)]
    power = [100.0 if t < 1010.0 else 200.0 for t in times]
    joules, how = energy_joules(gpu_series(0, times, [90.0] * 31, power), TrainWindow(1010.0, 1020.0, 1))
    assert joules == pytest.approx(2000.0)
    assert how.endswith("from sampled power integrated (no energy counter)")


def test_energy_needs_a_window_of_several_seconds_inside_the_samples():
    times = [1000.0 + t for t in range(10)]
    series = gpu_series(0, times, [90.0] * 10, [100.0] * 10, [100.0 * t for t in range(10)])
    assert energy_joules(series, TrainWindow(1002.0, 1004.0, 1)) == (
        None,
        "no energy: the training window of 2.0 s is under 5 s",
    )
    assert energy_joules(series, TrainWindow(1005.0, 1020.0, 1))[1] == (
        "no energy: GPU 0's samples do not span the training window"
    )


def test_the_monitor_adds_energy_and_img_per_joule_for_gpu_cells(tmp_path):
    monitor = CellMonitor(FakeContainer(), (0,), hz=1, out_dir=tmp_path, nvml_module=FakeNvml({0: [reading(1)]}))
    times = [1000.0 + t for t in range(21)]
    monitor.gpu = gpu_series(0, times, [90.0] * 21, [250.0] * 21, [250.0 * t for t in range(21)])
    values = {m.name: (m.value, m.unit) for m in monitor.metrics(TrainWindow(1002.0, 1018.0, samples=8_000))}
    assert values["energy_j"] == (pytest.approx(4000.0), "J")
    assert values["train_img_per_joule"] == (pytest.approx(2.0), "img/J")
    assert "energy over the 16.0 s training window from NVML's total-energy counter" in monitor.notes


def test_a_cell_that_ends_before_the_first_sample_says_so():
    assert window_metrics([], [], TrainWindow(1.0, 2.0, 1)) == (
        [],
        ["no monitoring samples: the cell ended before the sampler's first reading"],
    )
