"""What the store records about the machine a run ran on, and what `doctor` and `run` read of its state."""

from __future__ import annotations

import os
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import docker
import pynvml

from orchestrator.backends.interference import busy_seconds


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def gpus() -> list[dict]:
    """GPUs and driver as NVML sees them; an empty list where there is no NVIDIA driver."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            found.append(
                {
                    "index": index,
                    "name": pynvml.nvmlDeviceGetName(handle),
                    "memory_bytes": memory.total,
                    "compute_capability": "{}.{}".format(*pynvml.nvmlDeviceGetCudaComputeCapability(handle)),
                    "driver": driver,
                }
            )
        return found
    finally:
        pynvml.nvmlShutdown()


def gpu_processes() -> dict[int, list[str]]:
    """GPU index → its compute processes ('pid 4242 9.8 GiB'); empty without NVML."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return {}
    try:
        found = {}
        for index in range(pynvml.nvmlDeviceGetCount()):
            processes = pynvml.nvmlDeviceGetComputeRunningProcesses(pynvml.nvmlDeviceGetHandleByIndex(index))
            found[index] = [f"pid {p.pid} {(p.usedGpuMemory or 0) / 1024**3:.1f} GiB" for p in processes]
        return found
    finally:
        pynvml.nvmlShutdown()


def host_info(client: docker.DockerClient) -> dict:
    engine = client.version()
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "os": _os_name(),
        "kernel": platform.release(),
        "docker_version": engine.get("Version"),
        "gpus": gpus(),
    }


CPU_SYSFS = Path("/sys/devices/system/cpu")
PROC = Path("/proc")


@dataclass(frozen=True)
class CpuSettings:
    """What sets a CPU's speed from one cell to the next; None where this kernel (often a VM's) does not say."""

    governors: tuple[str, ...]  # scaling governors in use over the CPUs
    turbo: Optional[bool]  # intel_pstate's no_turbo inverted, or cpufreq's boost
    smt: Optional[bool]  # sibling hyperthreads active
    cpus: int
    memory_available_bytes: int
    memory_total_bytes: int


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_settings(root: Path = CPU_SYSFS, meminfo: Optional[str] = None) -> CpuSettings:
    governors = sorted({g for p in root.glob("cpu[0-9]*/cpufreq/scaling_governor") if (g := _read(p))})
    no_turbo, boost = _read(root / "intel_pstate/no_turbo"), _read(root / "cpufreq/boost")
    turbo = (no_turbo == "0") if no_turbo is not None else (boost == "1") if boost is not None else None
    smt = _read(root / "smt/active")
    memory = {}
    for line in (meminfo if meminfo is not None else (_read(PROC / "meminfo") or "")).splitlines():
        key, _, value = line.partition(":")
        memory[key] = int(value.split()[0]) * 1024 if value.split() else 0
    return CpuSettings(
        governors=tuple(governors),
        turbo=turbo,
        smt=None if smt is None else smt == "1",
        cpus=len(os.sched_getaffinity(0)),
        memory_available_bytes=memory.get("MemAvailable", 0),
        memory_total_bytes=memory.get("MemTotal", 0),
    )


@dataclass(frozen=True)
class Busy:
    """Work on the host over a short interval, this process left out: in CPUs, and the busiest processes."""

    cpus: float
    top: tuple[tuple[int, str, float], ...]  # (pid, command, CPUs), busiest first
    passing: float = 0.0  # CPUs of processes that started or ended within the interval (a test suite's CLI calls)

    def text(self) -> str:
        shown = [f"pid {pid} {name} {cpus:.1f}" for pid, name, cpus in self.top]
        shown += [f"{self.passing:.1f} by processes that came and went"] if self.passing >= MIN_SHOWN_CPUS else []
        return f"{self.cpus:.1f} CPUs of other work over {BUSY_INTERVAL_S:g} s ({', '.join(shown) or 'no process'})"


BUSY_INTERVAL_S = 1.0
TOP_PROCESSES = 5
MIN_SHOWN_CPUS = 0.05  # a process below this is noise, not worth naming


def process_times(proc: Path = PROC) -> dict[int, tuple[str, float]]:
    """pid → (command, user + system CPU seconds so far), from /proc/<pid>/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for path in proc.glob("[0-9]*/stat"):
        text = _read(path)
        if not text:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        found[int(path.parent.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)  # utime, stime
    return found


def busy_between(
    host_before: float,
    host_after: float,
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    seconds: float,
    own_pid: int,
) -> Busy:
    """Host busy CPU seconds (/proc/stat) and per-process CPU seconds at two moments → `Busy`."""
    used = {pid: (name, (spent - before[pid][1]) / seconds) for pid, (name, spent) in after.items() if pid in before}
    own = used.pop(own_pid, ("", 0.0))[1]
    top = sorted(
        ((pid, name, cpus) for pid, (name, cpus) in used.items() if cpus >= MIN_SHOWN_CPUS), key=lambda p: -p[2]
    )
    other = max((host_after - host_before) / seconds - own, 0.0)
    lasting = sum(cpus for _, cpus in used.values())
    return Busy(other, tuple(top[:TOP_PROCESSES]), max(other - lasting, 0.0))


def host_busy(seconds: float = BUSY_INTERVAL_S) -> Busy:
    """Measure the host's other work now, over `seconds`."""
    host_before, before = busy_seconds(), process_times()
    time.sleep(seconds)
    host_after, after = busy_seconds(), process_times()
    return busy_between(host_before, host_after, before, after, seconds, os.getpid())
