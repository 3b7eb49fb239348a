"""Other work beside a cell over its timed window, and whether it disturbed the cell's numbers.

A slowdown that lasts a whole cell is invisible to a check that compares the cell with itself, so the
host says what else ran. CPU: the busy time of the cell's CPUs in `/proc/stat` minus the cell's own
CPU time (its cgroup's, as the engine's stats report it), both read in the same sampling tick, so
what is left is work of anything else on those CPUs (the sampler, dockerd and the orchestrator
count too: they set the quiet floor the threshold was calibrated against). The cell's own usage
never flags it: a small model may well leave its CPUs idle. GPUs (NVML): other processes on the
cell's devices, clock throttle reasons and the SM clock against its maximum.

Counters are cumulative, so a figure over the samples around the window (one before its start, one
after its end) covers the whole window even when no sample falls inside it; the notes say the span.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import pynvml

from orchestrator.metrics import DISTURBED, Metric, measured

PROC_STAT = Path("/proc/stat")
PROC_LOADAVG = Path("/proc/loadavg")
# /proc/stat's per-CPU columns: user nice system idle iowait irq softirq steal guest guest_nice.
# Busy = everything but idle and iowait; guest time is already inside user and nice.
BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)
# Steal: time the hypervisor ran something else (another VM) while this VM's CPU wanted to run. It is
# other work too, but no process of this host shows it, so the notes name it apart.
STEAL_COLUMNS = (7,)
# Other work on the cell's CPUs, in CPUs, over a sampling interval that disturbs a cell. Calibrated on
# the 2-core development host (docs/systems.md, "Interference"): quiet cells read 0.02–0.20 at peak (the
# sampler, dockerd answering its stats calls, the orchestrator), cells beside a spinning process 1.0–1.5;
# a TensorFlow CNN 32 % slower than quiet read 0.39, so the line sits nearer the quiet side.
DISTURBING_OTHER_CPUS = 0.3
# Share of a cell's GPU samples with a slowdown throttle reason that flags it.
DISTURBING_THROTTLE_SHARE = 0.1
# NVML throttle reasons that slow a busy GPU down, in words; idle, application clocks, sync boost
# and display clocks are not interference.
SLOWDOWNS = {
    pynvml.nvmlClocksThrottleReasonSwPowerCap: "power cap",
    pynvml.nvmlClocksThrottleReasonHwSlowdown: "hardware slowdown",
    pynvml.nvmlClocksThrottleReasonSwThermalSlowdown: "thermal (software)",
    pynvml.nvmlClocksThrottleReasonHwThermalSlowdown: "thermal (hardware)",
    pynvml.nvmlClocksThrottleReasonHwPowerBrakeSlowdown: "power brake",
}
GIB_MB = 1024.0
DISTURBED_PREFIX = "disturbed: "


class CpuSample(Protocol):
    """What this module reads of a container sample (the monitor's frozen `ContainerSample`)."""

    @property
    def unix_s(self) -> float: ...
    @property
    def cpu_s(self) -> Optional[float]: ...
    @property
    def host_busy_s(self) -> Optional[float]: ...
    @property
    def host_steal_s(self) -> Optional[float]: ...
    @property
    def load1(self) -> Optional[float]: ...


class GpuReading(Protocol):
    unix_s: float
    device: int
    sm_clock_mhz: float
    sm_clock_max_mhz: Optional[float]
    throttle_reasons: int
    other_pids: str


def busy_seconds(
    cpus: Sequence[int] = (), text: Optional[str] = None, columns: tuple[int, ...] = BUSY_COLUMNS
) -> float:
    """CPU seconds the given CPUs (all, when none given) have been busy (or, with STEAL_COLUMNS, stolen)
    since boot, from `/proc/stat`."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for line in (text if text is not None else PROC_STAT.read_text()).splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus and int(name[3:]) not in cpus:
            continue
        total += sum(int(values[index]) for index in columns if index < len(values))
    return total / tick


def load1(text: Optional[str] = None) -> float:
    """The host's one-minute load average (it counts the cell's own threads too)."""
    return float((text if text is not None else PROC_LOADAVG.read_text()).split()[0])


@dataclass(frozen=True)
class CpuInterference:
    """Over `span_s` seconds of samples around a `window_s` timed window."""

    span_s: float
    window_s: float
    cell_cpus: float  # CPUs the cell used on average
    allowed: int  # CPUs it was allowed
    other_mean: float  # CPUs of other work on its CPUs, on average
    other_peak: float  # ... in the busiest sampling interval
    load1_max: Optional[float]
    steal_mean: float = 0.0  # of `other_mean`, CPUs the hypervisor gave to other VMs

    @property
    def disturbed(self) -> bool:
        return self.other_peak >= DISTURBING_OTHER_CPUS

    def reason(self) -> str:
        return (
            f"the cell got {self.cell_cpus:.1f} of {self.allowed} CPUs; {self.other_mean:.1f} CPUs of other work on "
            f"its CPUs{f' ({self.steal_mean:.1f} of it stolen by the hypervisor)' if self.steal_mean >= 0.05 else ''}"
            f" on average over {self.span_s:.1f} s around the {self.window_s:.1f} s timed window, "
            f"{self.other_peak:.1f} at peak"
        )

    def metrics(self) -> list[Metric]:
        found = [
            measured("cpu_other_cpus_mean", self.other_mean),
            measured("cpu_other_cpus_max", self.other_peak),
            measured("cell_cpus_mean", self.cell_cpus),
            measured("cell_cpus_allowed", float(self.allowed)),
            measured("cpu_steal_cpus_mean", self.steal_mean),
        ]
        return found + ([measured("host_load1_max", self.load1_max)] if self.load1_max is not None else [])


def _spanning(samples: Sequence[CpuSample], start: float, end: float) -> list[CpuSample]:
    """The samples in [start, end] plus the last one before and the first one after, where there are."""
    usable = sorted((s for s in samples if s.cpu_s is not None and s.host_busy_s is not None), key=lambda s: s.unix_s)
    before = [s for s in usable if s.unix_s < start][-1:]
    after = [s for s in usable if s.unix_s > end][:1]
    return before + [s for s in usable if start <= s.unix_s <= end] + after


def cpu_interference(
    samples: Sequence[CpuSample], start: float, end: float, allowed: int
) -> tuple[Optional[CpuInterference], str]:
    """Other work on the cell's CPUs around [start, end], or None and why there is no figure."""
    used = _spanning(samples, start, end)
    if len(used) < 2:
        return None, f"no CPU interference figure: fewer than 2 host samples around the {end - start:.1f} s window"
    times = np.array([s.unix_s for s in used])
    cell = np.diff([s.cpu_s for s in used]) / np.diff(times)  # type: ignore[arg-type]
    host = np.diff([s.host_busy_s for s in used]) / np.diff(times)  # type: ignore[arg-type]
    other = np.clip(host - cell, 0.0, None)
    weights = np.diff(times)
    loads = [s.load1 for s in used if s.load1 is not None]
    steals = [s.host_steal_s for s in used]
    steal = (steals[-1] - steals[0]) / (times[-1] - times[0]) if None not in steals else 0.0  # type: ignore[operator]
    found = CpuInterference(
        span_s=float(times[-1] - times[0]),
        window_s=end - start,
        cell_cpus=float(np.average(cell, weights=weights)),
        allowed=allowed,
        other_mean=float(np.average(other, weights=weights)),
        other_peak=float(other.max()),
        load1_max=max(loads) if loads else None,
        steal_mean=float(steal),
    )
    covered = "" if used[0].unix_s <= start and used[-1].unix_s >= end else " (the samples do not reach both edges)"
    return found, f"CPU interference over {found.span_s:.1f} s of samples around the timed window{covered}"


def parse_pids(text: str) -> dict[int, float]:
    """'4242:9830.5 515:20.0' (pid:MB, as the GPU series stores them) → {4242: 9830.5, 515: 20.0}."""
    found = {}
    for item in text.split():
        pid, _, mb = item.partition(":")
        found[int(pid)] = float(mb or 0)
    return found


def format_pids(pids: dict[int, float]) -> str:
    return " ".join(f"{pid}:{mb:.1f}" for pid, mb in sorted(pids.items()))


@dataclass(frozen=True)
class GpuInterference:
    """One GPU over the samples in a window."""

    device: int
    others: dict[int, float]  # pid → most device memory (MB) seen, processes other than the cell's
    throttled_share: float  # share of samples with a slowdown reason
    reasons: tuple[str, ...]  # the slowdowns seen
    clock_share: Optional[float]  # mean SM clock ÷ its maximum

    def reasons_text(self) -> list[str]:
        """Why this GPU disturbed the cell: other processes on it, slowdowns in enough of its samples."""
        found = []
        if self.others:
            listed = ", ".join(f"pid {pid}, {mb / GIB_MB:.1f} GiB" for pid, mb in sorted(self.others.items()))
            found.append(f"another process used GPU {self.device}: {listed}")
        if self.throttled_share >= DISTURBING_THROTTLE_SHARE:
            clock = f"; SM clock {self.clock_share:.0%} of its maximum" if self.clock_share is not None else ""
            found.append(
                f"GPU {self.device} throttled: {', '.join(self.reasons)}, {self.throttled_share:.0%} of the time{clock}"
            )
        return found


def gpu_interference(samples: Sequence[GpuReading]) -> list[GpuInterference]:
    """Per device, over the given samples (those of the timed window)."""
    found = []
    for device in sorted({s.device for s in samples}):
        series = [s for s in samples if s.device == device]
        others: dict[int, float] = {}
        for sample in series:
            for pid, mb in parse_pids(sample.other_pids).items():
                others[pid] = max(mb, others.get(pid, 0.0))
        slowed = [s.throttle_reasons & sum(SLOWDOWNS) for s in series]
        reasons = tuple(text for bit, text in SLOWDOWNS.items() if any(mask & bit for mask in slowed))
        clocks = [s.sm_clock_mhz / s.sm_clock_max_mhz for s in series if s.sm_clock_max_mhz]
        found.append(
            GpuInterference(
                device=device,
                others=others,
                throttled_share=sum(bool(mask) for mask in slowed) / len(series),
                reasons=reasons,
                clock_share=float(np.mean(clocks)) if clocks else None,
            )
        )
    return found


def gpu_metrics(found: Sequence[GpuInterference]) -> list[Metric]:
    """Worst device's figures: other processes and their memory, throttled share, SM clock share."""
    if not found:
        return []
    metrics = [
        measured("gpu_other_processes_max", float(max(len(g.others) for g in found))),
        measured("gpu_other_mem_mb_max", max(max(g.others.values(), default=0.0) for g in found)),
        measured("gpu_throttled_pct", 100.0 * max(g.throttled_share for g in found)),
    ]
    clocks = [g.clock_share for g in found if g.clock_share is not None]
    return metrics + ([measured("gpu_sm_clock_pct_of_max_mean", 100.0 * min(clocks))] if clocks else [])


def verdict(cpu: Optional[CpuInterference], gpus: Sequence[GpuInterference]) -> tuple[list[Metric], list[str]]:
    """The `disturbed` metric (only where something was measured) and a note per reason."""
    if cpu is None and not gpus:
        return [], []
    reasons = ([cpu.reason()] if cpu is not None and cpu.disturbed else []) + [
        text for gpu in gpus for text in gpu.reasons_text()
    ]
    return [measured(DISTURBED, float(bool(reasons)))], [DISTURBED_PREFIX + text for text in reasons]
