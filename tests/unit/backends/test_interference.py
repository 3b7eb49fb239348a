"""Interference beside a cell, from faked /proc/stat, cgroup and NVML series shaped like the real ones."""

from __future__ import annotations

import os
from pathlib import Path

import pynvml
import pytest

from orchestrator.backends import interference
from orchestrator.backends.interference import (
    DISTURBED,
    DISTURBING_OTHER_CPUS,
    busy_seconds,
    cpu_interference,
    gpu_interference,
    verdict,
)
from orchestrator.backends.monitor import CellMonitor, ContainerSample, GpuSample, Nvml, window_metrics
from tests.unit.backends.test_monitor import MB, FakeNvml, reading, wait_for
from workloads.result import TrainWindow

TICK = os.sysconf("SC_CLK_TCK")
CONTAINER_ID = "3f9c0d5e7a1b" * 5 + "abcd"


def proc_stat(busy_s: dict[int, float], idle_s: float = 1000.0) -> str:
    """/proc/stat as Linux writes it: the total line, one line per CPU (user nice system idle iowait irq
    softirq steal guest guest_nice, in clock ticks), then the other counters."""
    lines = []
    rows = {cpu: (int(busy * TICK * 0.7), 0, int(busy * TICK * 0.3), int(idle_s * TICK), 17, 0, 3, 0, 0, 0)
            for cpu, busy in busy_s.items()}  # fmt: skip
    total = [sum(column) for column in zip(*rows.values())]
    lines.append("cpu  " + " ".join(map(str, total)))
    lines += [f"cpu{cpu} " + " ".join(map(str, row)) for cpu, row in rows.items()]
    lines += ["intr 1234567 0 9 0", "ctxt 98765432", "btime 1764600000", "processes 32229", "procs_running 3"]
    return "\n".join(lines) + "\n"


def test_busy_time_counts_user_system_irq_softirq_on_the_cells_cpus_only():
    text = proc_stat({0: 100.0, 1: 40.0, 2: 7.0})
    softirq = 3 / TICK  # per CPU; iowait and idle are not busy
    assert busy_seconds((), text) == pytest.approx(147.0 + 3 * softirq, abs=3 / TICK)
    assert busy_seconds((1, 2), text) == pytest.approx(47.0 + 2 * softirq, abs=2 / TICK)


def samples(times, cell_cpus, other_cpus, loads=None, steal_cpus=0.0):
    """Cumulative cell CPU time and host busy time of its CPUs, per tick: the cell used `cell_cpus[i]`
    and other work `other_cpus[i]` CPUs over the interval ending at tick i."""
    found, cell, host, steal = [], 0.0, 0.0, 0.0
    for i, t in enumerate(times):
        if i:
            dt = t - times[i - 1]
            cell += cell_cpus[i] * dt
            host += (cell_cpus[i] + other_cpus[i]) * dt
            steal += steal_cpus * dt  # part of the other work: the hypervisor's
        load = (loads or [1.0] * len(times))[i]
        found.append(ContainerSample(t - times[0], None, 500.0, t, cell, host, load, steal))
    return found


def test_a_quiet_cell_using_few_of_its_cpus_is_not_disturbed():
    # A small model: 0.6 of 2 CPUs; the sampler and dockerd add 0.05.
    times = [1000.0 + t for t in range(12)]
    found, how = cpu_interference(samples(times, [0.6] * 12, [0.05] * 12), 1002.5, 1008.5, allowed=2)
    assert found is not None and not found.disturbed
    assert found.cell_cpus == pytest.approx(0.6) and found.other_mean == pytest.approx(0.05)
    assert found.span_s == 7.0  # from the last sample before the window to the first after it
    assert how == "CPU interference over 7.0 s of samples around the timed window"
    metrics, notes = verdict(found, [])
    assert {m.name: m.value for m in metrics}[DISTURBED] == 0.0 and notes == []


def test_a_burner_beside_the_cell_disturbs_it_and_the_reason_says_how_much():
    times = [1000.0 + t for t in range(12)]
    cell = [0.7] * 12
    other = [0.05] * 4 + [1.3] * 8  # a spinning process from t = 1003 on
    found, _ = cpu_interference(samples(times, cell, other, loads=[1.0] * 4 + [3.1] * 8), 1002.5, 1008.5, allowed=2)
    assert found.disturbed and found.other_peak == pytest.approx(1.3) and found.load1_max == 3.1
    metrics, notes = verdict(found, [])
    values = {m.name: m.value for m in metrics}
    assert values[DISTURBED] == 1.0
    assert notes == [
        "disturbed: the cell got 0.7 of 2 CPUs; 1.1 CPUs of other work on its CPUs on average over 7.0 s around "
        "the 6.0 s timed window, 1.3 at peak"
    ]
    assert {m.name for m in found.metrics()} == {
        "cpu_other_cpus_mean", "cpu_other_cpus_max", "cell_cpus_mean", "cell_cpus_allowed", "host_load1_max",
        "cpu_steal_cpus_mean",
    }  # fmt: skip


def test_time_stolen_by_the_hypervisor_is_named_apart():
    times = [1000.0 + t for t in range(8)]
    found, _ = cpu_interference(samples(times, [1.4] * 8, [0.6] * 8, steal_cpus=0.4), 1001.0, 1006.5, allowed=2)
    assert found.disturbed and found.steal_mean == pytest.approx(0.4)
    assert "0.6 CPUs of other work on its CPUs (0.4 of it stolen by the hypervisor) on average" in found.reason()


def test_one_disturbed_interval_is_enough_and_the_threshold_sits_between_quiet_and_burner():
    times = [1000.0 + t for t in range(10)]
    other = [0.1] * 10
    other[5] = 0.9  # a burner overlapping one second of the window
    found, _ = cpu_interference(samples(times, [1.9] * 10, other), 1001.0, 1009.0, allowed=2)
    assert found.other_mean < DISTURBING_OTHER_CPUS < found.other_peak and found.disturbed
    assert 0.2 < DISTURBING_OTHER_CPUS < 0.39  # above the highest quiet peak, below a 32 %-slow cell


def test_counters_around_a_window_without_a_sample_inside_still_measure_it():
    times = [1000.0, 1001.0, 1002.0]
    found, how = cpu_interference(samples(times, [0, 1.0, 0.8], [0, 0.0, 1.2]), 1001.2, 1001.8, allowed=2)
    assert found.span_s == 1.0 and found.other_peak == pytest.approx(1.2) and found.disturbed
    assert how == "CPU interference over 1.0 s of samples around the timed window"


def test_without_two_samples_around_the_window_there_is_no_figure_and_no_flag():
    found, how = cpu_interference(samples([1000.0], [0.0], [0.0]), 1000.5, 1001.5, allowed=2)
    assert found is None
    assert how == "no CPU interference figure: fewer than 2 host samples around the 1.0 s window"
    assert verdict(None, []) == ([], [])


def gpu_samples(device, rows):
    """NVML readings: (unix_s, sm_clock, throttle mask, other processes 'pid:MB')."""
    return [
        GpuSample(t - 1000.0, device, 99.0, 20_000.0, 600.0, clock, 70.0, t, None, 1980.0, mask, pids)
        for t, clock, mask, pids in rows
    ]


def test_another_process_on_the_gpu_disturbs_the_cell_and_is_named():
    series = gpu_samples(0, [(1000.0 + t, 1980.0, 0, "4242:10035.2" if t >= 3 else "") for t in range(6)])
    found = gpu_interference(series)
    metrics, notes = verdict(None, found)
    assert notes == ["disturbed: another process used GPU 0: pid 4242, 9.8 GiB"]
    values = {m.name: m.value for m in metrics + interference.gpu_metrics(found)}
    assert values[DISTURBED] == 1.0 and values["gpu_other_processes_max"] == 1.0
    assert values["gpu_other_mem_mb_max"] == pytest.approx(10035.2)


def test_power_cap_throttling_with_a_clock_drop_disturbs_the_cell():
    cap, idle = pynvml.nvmlClocksThrottleReasonSwPowerCap, pynvml.nvmlClocksThrottleReasonGpuIdle
    clocks = [1980.0] * 4 + [1200.0] * 6  # the clock drops when the power cap bites
    masks = [idle] + [0] * 3 + [cap] * 6
    series = gpu_samples(0, [(1000.0 + t, clocks[t], masks[t], "") for t in range(10)])
    series += gpu_samples(1, [(1000.0 + t, 1980.0, 0, "") for t in range(10)])
    found = gpu_interference(series)
    metrics, notes = verdict(None, found)
    assert notes == ["disturbed: GPU 0 throttled: power cap, 60% of the time; SM clock 76% of its maximum"]
    values = {m.name: m.value for m in interference.gpu_metrics(found)}
    assert values["gpu_throttled_pct"] == 60.0 and values["gpu_sm_clock_pct_of_max_mean"] == pytest.approx(76.4, 0.01)


def test_idle_and_application_clock_reasons_are_not_interference():
    masks = [pynvml.nvmlClocksThrottleReasonGpuIdle, pynvml.nvmlClocksThrottleReasonApplicationsClocksSetting]
    series = gpu_samples(0, [(1000.0 + t, 1980.0, masks[t % 2], "") for t in range(10)])
    assert verdict(None, gpu_interference(series))[1] == []


class FakeHost:
    """A container whose engine stats and the host's /proc/stat move on together at each tick: the
    cell uses 1.0 CPU (cgroup cpuacct, ns), a burner 1.0 CPU on CPU 1, CPU 2 (not the cell's) is busy."""

    def __init__(self, proc_stat_path) -> None:
        self.id = CONTAINER_ID
        self.path = proc_stat_path
        self.calls = 0

    def stats(self, stream, one_shot):
        self.calls += 1
        seconds = self.calls * 0.02  # the tick's length in the test
        self.path.write_text(proc_stat({0: 10 + seconds * 0.5, 1: 20 + seconds * 1.5, 2: 30 + seconds}))
        return {
            "cpu_stats": {"cpu_usage": {"total_usage": int(seconds * 1e9)}, "system_cpu_usage": 1, "online_cpus": 3},
            "memory_stats": {"usage": 100 * MB, "stats": {}},
        }


def test_the_sampler_reads_the_cells_cpus_and_its_cgroup_in_the_same_tick(tmp_path, monkeypatch):
    monkeypatch.setattr(interference, "PROC_STAT", tmp_path / "stat")
    monkeypatch.setattr(interference, "PROC_LOADAVG", tmp_path / "loadavg")
    (tmp_path / "loadavg").write_text("2.50 1.20 0.40 3/144 32229\n")
    host = FakeHost(tmp_path / "stat")
    with CellMonitor(host, (), hz=50, out_dir=tmp_path, cpus=(0, 1)) as monitor:
        wait_for(lambda: len(monitor.stats) >= 6)
    first, last = monitor.stats[0], monitor.stats[-1]
    assert last.load1 == 2.5
    # Host busy time of CPUs 0 and 1 grows 2 CPUs' worth per unit of cell time, the cell's 1: other work = 1.
    ratio = (last.host_busy_s - first.host_busy_s) / (last.cpu_s - first.cpu_s)
    assert ratio == pytest.approx(2.0, abs=0.05)


def test_other_processes_are_told_from_the_cells_own_by_their_cgroup(tmp_path):
    """This test process stands for the cell: its real /proc/PID/cgroup names the 'container'."""
    paths = [
        line.split(":", 2)[2].rstrip("/").rsplit("/", 1)[-1]
        for line in Path("/proc/self/cgroup").read_text().splitlines()
    ]
    named = [segment for segment in paths if segment]
    if not named:
        pytest.skip("this process sits in the root cgroup: nothing names it")
    host = FakeHost(tmp_path / "stat")
    host.id = named[0]
    fake = FakeNvml({0: [reading(95, processes=[(os.getpid(), 9000.0), (4242, 2048.0)])]})
    with CellMonitor(host, (0,), hz=50, out_dir=tmp_path, nvml_module=fake) as monitor:
        wait_for(lambda: len(monitor.gpu) >= 2)
    assert monitor.gpu[0].other_pids == "4242:2048.0" and monitor.gpu[0].sm_clock_max_mhz == 1980.0


def test_nvml_read_keeps_the_unsupported_readings_empty():
    class OldGpu(FakeNvml):
        def nvmlDeviceGetMaxClockInfo(self, handle, clock):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    sample = Nvml(OldGpu({0: [reading(50, processes=[(77, None)])]})).read(0, 0.0, 0.0)
    assert sample.sm_clock_max_mhz is None and sample.other_pids == "77:0.0" and sample.throttle_reasons == 0


def test_a_cell_without_a_sample_in_its_window_gets_no_figure_and_says_so():
    gpu = gpu_samples(0, [(1000.0, 1980.0, 0, ""), (1003.0, 1980.0, 0, "")])
    stats = samples([1000.0, 1003.0], [0.0, 1.0], [0.0, 0.0])
    metrics, notes = window_metrics(gpu, stats, TrainWindow(1001.0, 1002.5, samples=100))
    assert metrics == []
    assert notes == [
        "no GPU sample in the 1.5 s timed training window: no GPU summary",
        "no container sample in the 1.5 s timed training window: no container summary",
    ]
