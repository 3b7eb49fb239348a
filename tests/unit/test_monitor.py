"""Monitoring maths with a fake NVML and recorded engine stats (the real ones need a GPU / engine)."""

from __future__ import annotations

import csv
import time
from types import SimpleNamespace

import pynvml
import pytest

from orchestrator.monitor import (
    CONTAINER_SERIES,
    GPU_SERIES,
    CellMonitor,
    Nvml,
    cpu_percent,
    memory_used_mb,
    open_nvml,
)

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

    def nvmlDeviceGetClockInfo(self, handle, clock):
        assert clock == pynvml.NVML_CLOCK_SM
        return self._now(handle)["sm_mhz"]

    def nvmlDeviceGetTemperature(self, handle, sensor):
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        value = self._now(handle)["temp"]
        self.reads[handle] += 1  # the last call of a read: move on to the next sample
        return value


def reading(util, mem_mb=1000, power_mw=250_000, sm_mhz=1980, temp=60):
    return {"util": util, "mem_mb": mem_mb, "power_mw": power_mw, "sm_mhz": sm_mhz, "temp": temp}


def test_nvml_read_converts_units():
    fake = FakeNvml({0: [reading(97, mem_mb=2048, power_mw=312_500, sm_mhz=1755, temp=71)]})
    sample = Nvml(fake).read(0, t_s=1.5)
    assert (sample.util_pct, sample.mem_used_mb, sample.power_w, sample.sm_clock_mhz, sample.temp_c) == (
        97.0,
        2048.0,
        312.5,
        1755.0,
        71.0,
    )
    assert sample.device == 0 and sample.t_s == 1.5


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
    assert len(monitor.notes) == 1 and monitor.notes[0].startswith("NVML unavailable")
    assert not (tmp_path / GPU_SERIES).exists()


def test_cpu_cells_do_not_touch_nvml(tmp_path):
    fake = FakeNvml({0: [reading(1)]})
    with CellMonitor(FakeContainer(), (), hz=50, out_dir=tmp_path, nvml_module=fake) as monitor:
        wait_for(lambda: len(monitor.stats) >= 1)
    assert fake.reads == {0: 0} and monitor.notes == []
