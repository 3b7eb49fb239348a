"""Host-side monitoring of a running cell: its GPUs through NVML, its container through the engine.

One sampling thread per cell at `hz` (default 1): per GPU of the cell utilisation %, memory used,
power, SM clock, temperature and the total-energy counter (NVML, `nvidia-ml-py`); the container's
CPU % and memory from the engine's one-shot stats. The raw series of the container's whole life go
to CSV files beside the cell's log; summaries (mean, p95, max over every device) become metrics,
taken over the workload's timed training window (`TrainWindow`, unix seconds, read from its
result) so that loading data, compiling and evaluating do not dilute them. Energy over that window
comes from the difference of NVML's energy counter (Volta and newer), and only where a GPU has
none from sampled power (which NVML averages over about a second): a metric note says which.
NVML's utilisation is the share of time a kernel was running, not how busy the SMs were. Without
NVML (no NVIDIA driver) the GPU part is skipped with a one-line note; monitoring never fails a cell.
Each tick also reads the busy time of the cell's CPUs and the load from /proc, and per GPU the other
processes on it, its throttle reasons and maximum SM clock: `orchestrator.backends.interference` turns them
into the cell's interference figures and its `disturbed` flag. A cell with a training window but no
sample inside it gets no summary, and its notes say so (never the container's whole life instead).
"""

from __future__ import annotations

import csv
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

import docker.errors
import numpy as np
import pynvml
import requests.exceptions

from orchestrator.analysis.summary import summarize_series
from orchestrator.backends import interference
from orchestrator.backends.interference import (
    STEAL_COLUMNS,
    busy_seconds,
    cpu_interference,
    format_pids,
    gpu_interference,
    load1,
)
from orchestrator.metrics import ENERGY, IMG_PER_JOULE, SAMPLED, SERIES_STATS, Metric, measured
from workloads.result import TrainWindow

GPU_SERIES = "gpu.csv"
CONTAINER_SERIES = "container.csv"
MB = 1024 * 1024
# Energy needs a window of several seconds: NVML's counter and power readings update about once a second.
MIN_ENERGY_WINDOW_S = 5.0


@dataclass(frozen=True)
class GpuSample:
    t_s: float
    device: int
    util_pct: float
    mem_used_mb: float
    power_w: float
    sm_clock_mhz: float
    temp_c: float
    unix_s: float = 0.0
    energy_mj: Optional[float] = None  # NVML's total-energy counter; None where the GPU has none
    sm_clock_max_mhz: Optional[float] = None
    throttle_reasons: int = 0  # NVML's clock throttle reasons, a bit mask
    other_pids: str = ""  # compute processes on the GPU other than the cell's: 'pid:MB pid:MB'


@dataclass(frozen=True)
class ContainerSample:
    t_s: float
    cpu_pct: Optional[float]  # None for the first sample: CPU % needs two readings
    mem_used_mb: float
    unix_s: float = 0.0
    cpu_s: Optional[float] = None  # the container's CPU time so far (its cgroup's, from the engine)
    host_busy_s: Optional[float] = None  # busy time of the cell's CPUs so far (/proc/stat), same tick
    load1: Optional[float] = None
    host_steal_s: Optional[float] = None  # of it, time stolen by the hypervisor




class Nvml:
    """NVML behind the few calls the sampler needs; `module` is pynvml, or a fake in unit tests."""

    def __init__(self, module: ModuleType | Any = pynvml) -> None:
        self.nvml = module
        self.nvml.nvmlInit()
        self._max_clock: dict[int, Optional[float]] = {}

    def device_ids(self) -> tuple[int, ...]:
        return tuple(range(self.nvml.nvmlDeviceGetCount()))

    def read(self, device: int, t_s: float, unix_s: float, own: Callable[[int], bool] = lambda pid: False) -> GpuSample:
        """One device's reading; `own` tells the cell's processes from others on the device."""
        nvml = self.nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(device)
        energy_mj = self._energy(handle)
        try:
            processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        except pynvml.NVMLError:  # an old driver: no process list, the other readings still count
            processes = []
        others = {process.pid: (process.usedGpuMemory or 0) / MB for process in processes if not own(process.pid)}
        if device not in self._max_clock:
            self._max_clock[device] = self._optional(nvml.nvmlDeviceGetMaxClockInfo, handle, nvml.NVML_CLOCK_SM)
        return GpuSample(
            t_s=t_s,
            device=device,
            util_pct=float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
            mem_used_mb=nvml.nvmlDeviceGetMemoryInfo(handle).used / MB,
            power_w=nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
            sm_clock_mhz=float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
            temp_c=float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
            unix_s=unix_s,
            energy_mj=energy_mj,
            sm_clock_max_mhz=self._max_clock[device],
            throttle_reasons=int(self._optional(nvml.nvmlDeviceGetCurrentClocksThrottleReasons, handle) or 0),
            other_pids=format_pids(others),
        )

    def _energy(self, handle: Any) -> Optional[float]:
        return self._optional(self.nvml.nvmlDeviceGetTotalEnergyConsumption, handle)  # none before Volta

    @staticmethod
    def _optional(call: Callable[..., Any], *arguments: Any) -> Optional[float]:
        """A reading some GPUs do not support: None there."""
        try:
            return float(call(*arguments))
        except pynvml.NVMLError:
            return None

    def close(self) -> None:
        self.nvml.nvmlShutdown()


def open_nvml(module: ModuleType | Any = pynvml) -> tuple[Optional[Nvml], str]:
    """NVML, or None and the one-line reason it is not there (no driver, no GPU)."""
    try:
        return Nvml(module), ""
    except pynvml.NVMLError as exc:
        return None, f"NVML unavailable ({exc}): no GPU figures, container CPU/memory only"


def host_gpu_ids() -> tuple[tuple[int, ...], str]:
    """The GPUs NVML sees on this host, and the reason when it sees none."""
    nvml, note = open_nvml()
    if nvml is None:
        return (), note
    try:
        return nvml.device_ids(), ""
    finally:
        nvml.close()


def cpu_percent(cpu_stats: dict, previous: dict) -> Optional[float]:
    """The engine's (and `docker stats`') formula: container CPU time / host CPU time × CPUs × 100."""
    try:
        used = cpu_stats["cpu_usage"]["total_usage"] - previous["cpu_usage"]["total_usage"]
        elapsed = cpu_stats["system_cpu_usage"] - previous["system_cpu_usage"]
        cpus = cpu_stats.get("online_cpus") or len(cpu_stats["cpu_usage"].get("percpu_usage") or [1])
    except (KeyError, TypeError):
        return None
    return used / elapsed * cpus * 100.0 if elapsed > 0 and used >= 0 else None


def memory_used_mb(memory_stats: dict) -> Optional[float]:
    """Usage minus the reclaimable page cache, as `docker stats` shows it (cgroup v1 and v2 keys)."""
    if "usage" not in memory_stats:
        return None
    stats = memory_stats.get("stats") or {}
    cache = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return max(memory_stats["usage"] - cache, 0) / MB


def series_metrics(prefix: str, samples: Sequence[Any], names: Sequence[str]) -> list[Metric]:
    """`<prefix>_<name>_{mean,p95,max}` for each named field that has values."""
    found = []
    for name in names:
        values = [getattr(sample, name) for sample in samples if getattr(sample, name) is not None]
        if not values:
            continue
        summary = summarize_series(values)
        found += [measured(f"{prefix}_{name}_{stat}", getattr(summary, stat)) for stat in SERIES_STATS]
    return found


def within(samples: Sequence[Any], window: TrainWindow) -> list[Any]:
    """The samples taken during the window."""
    return [sample for sample in samples if window.start_unix <= sample.unix_s <= window.end_unix]


def energy_joules(samples: Sequence[GpuSample], window: TrainWindow) -> tuple[Optional[float], str]:
    """Energy of every sampled GPU over the window, and how it was found (or why not).

    From NVML's energy counter, read at the window's edges by linear interpolation between the
    samples around them; where a GPU has no counter, from its power samples integrated over the
    window (trapezoids, the window's edges interpolated).
    """
    if window.seconds < MIN_ENERGY_WINDOW_S:
        return None, f"no energy: the training window of {window.seconds:.1f} s is under {MIN_ENERGY_WINDOW_S:g} s"
    total, methods = 0.0, set()
    for device in sorted({sample.device for sample in samples}):
        series = [sample for sample in samples if sample.device == device]
        times = np.array([sample.unix_s for sample in series])
        if len(series) < 2 or times[0] > window.start_unix or times[-1] < window.end_unix:
            return None, f"no energy: GPU {device}'s samples do not span the training window"
        counters = [sample.energy_mj for sample in series]
        if all(counter is not None for counter in counters):
            start, end = np.interp([window.start_unix, window.end_unix], times, np.array(counters, dtype=float))
            total += (end - start) / 1000.0
            methods.add("NVML's total-energy counter")
        else:
            inside = (times > window.start_unix) & (times < window.end_unix)
            edges = np.interp([window.start_unix, window.end_unix], times, [sample.power_w for sample in series])
            at = np.concatenate(([window.start_unix], times[inside], [window.end_unix]))
            watts = np.concatenate(([edges[0]], [s.power_w for s, keep in zip(series, inside) if keep], [edges[1]]))
            total += float(np.trapezoid(watts, at))
            methods.add("sampled power integrated (no energy counter)")
    return total, f"energy over the {window.seconds:.1f} s training window from {' and '.join(sorted(methods))}"


def window_metrics(
    gpu: Sequence[GpuSample], stats: Sequence[ContainerSample], window: Optional[TrainWindow]
) -> tuple[list[Metric], list[str]]:
    """Summaries over the training window (the whole series only when there is no window), and notes
    saying what they cover; a kind of series without a sample in the window gets no summary."""
    notes = []
    if not gpu and not stats:
        notes.append("no monitoring samples: the cell ended before the sampler's first reading")
    elif window is None:
        notes.append("monitoring summaries cover the container's whole life (no training window to align)")
    else:
        for name, series in (("GPU", gpu), ("container", stats)):
            if series and not within(series, window):
                notes.append(f"no {name} sample in the {window.seconds:.1f} s timed training window: no {name} summary")
        gpu, stats = within(gpu, window), within(stats, window)
        if gpu or stats:
            notes.append(f"monitoring summaries cover the {window.seconds:.1f} s timed training window")
    metrics = series_metrics("gpu", gpu, list(SAMPLED["gpu"]))
    metrics += series_metrics("container", stats, list(SAMPLED["container"]))
    return metrics, notes


class CellMonitor:
    """Context manager sampling one running container and its GPUs until exit."""

    def __init__(
        self,
        container: Any,
        device_ids: tuple[int, ...],
        hz: float,
        out_dir: Path,
        nvml_module: ModuleType | Any = pynvml,
        cpus: tuple[int, ...] = (),
    ) -> None:
        self.container = container
        self.device_ids = device_ids
        self.cpus = cpus  # the cell's cpuset; () = every CPU of the host
        self.period = 1.0 / hz
        self.out_dir = out_dir
        self.nvml_module = nvml_module
        self.gpu: list[GpuSample] = []
        self.stats: list[ContainerSample] = []
        self.notes: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="cell-monitor", daemon=True)
        self._nvml: Optional[Nvml] = None

    def __enter__(self) -> CellMonitor:
        if self.device_ids:
            self._nvml, note = open_nvml(self.nvml_module)
            if note:
                self.notes.append(note)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self._nvml is not None:
            self._nvml.close()
        self._write(GPU_SERIES, GpuSample, self.gpu)
        self._write(CONTAINER_SERIES, ContainerSample, self.stats)

    def metrics(self, window: Optional[TrainWindow] = None) -> list[Metric]:
        """Summaries over the training window, for GPU cells its energy, and the interference beside
        the cell with its `disturbed` verdict; notes say what they cover."""
        metrics, notes = window_metrics(self.gpu, self.stats, window)
        if window is not None and self.gpu:
            joules, how = energy_joules(self.gpu, window)
            notes.append(how)
            if joules is not None and joules > 0:
                per_joule = window.samples / joules
                metrics += [measured(ENERGY, joules), measured(IMG_PER_JOULE, per_joule)]
        if window is not None:
            found, said = self._interference(window)
            metrics, notes = metrics + found, notes + said
        self.notes += notes
        return metrics

    def _interference(self, window: TrainWindow) -> tuple[list[Metric], list[str]]:
        allowed = len(self.cpus) or os.cpu_count() or 1
        cpu, how = cpu_interference(self.stats, window.start_unix, window.end_unix, allowed)
        gpus = gpu_interference(within(self.gpu, window))
        found = (cpu.metrics() if cpu else []) + interference.gpu_metrics(gpus)
        flag, reasons = interference.verdict(cpu, gpus)
        return found + flag, [how, *reasons]

    def _sample(self) -> None:
        start = time.monotonic()
        previous_cpu: Optional[dict] = None
        while True:
            t_s = round(time.monotonic() - start, 3)
            unix_s = time.time()
            if self._nvml is not None:
                self._read_gpus(t_s, unix_s)
            previous_cpu = self._read_container(t_s, unix_s, previous_cpu)
            if self._stop.wait(max(0.0, self.period - (time.monotonic() - start - t_s))):
                return

    def _read_gpus(self, t_s: float, unix_s: float) -> None:
        assert self._nvml is not None
        try:
            self.gpu += [self._nvml.read(device, t_s, unix_s, self._own) for device in self.device_ids]
        except pynvml.NVMLError as exc:
            self.notes.append(f"NVML read failed at {t_s:.0f} s ({exc}); GPU sampling stopped")
            self._nvml.close()
            self._nvml = None

    def _read_container(self, t_s: float, unix_s: float, previous_cpu: Optional[dict]) -> Optional[dict]:
        try:
            stats = self.container.stats(stream=False, one_shot=True)
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return previous_cpu  # not started yet, or gone: nothing to read this tick
        host_busy_s = busy_seconds(self.cpus)  # right after the engine read the cgroup: the same moment
        host_steal_s = busy_seconds(self.cpus, columns=STEAL_COLUMNS)
        memory = memory_used_mb(stats.get("memory_stats") or {})
        if memory is None:
            return previous_cpu  # the container has exited: the engine reports empty stats
        cpu = stats.get("cpu_stats") or {}
        cpu_pct = cpu_percent(cpu, previous_cpu) if previous_cpu else None
        used_ns = (cpu.get("cpu_usage") or {}).get("total_usage")
        cpu_s = used_ns / 1e9 if used_ns is not None else None
        self.stats.append(ContainerSample(t_s, cpu_pct, memory, unix_s, cpu_s, host_busy_s, load1(), host_steal_s))
        return cpu

    def _own(self, pid: int) -> bool:
        """Whether a host pid belongs to the cell: its cgroup path names the container."""
        try:
            return self.container.id in Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            return False  # gone already, or in a pid namespace this host cannot see into: counted as other

    def _write(self, name: str, kind: type, samples: Sequence[Any]) -> None:
        if not samples:
            return
        with (self.out_dir / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([f.name for f in fields(kind)])
            writer.writerows(astuple(sample) for sample in samples)
