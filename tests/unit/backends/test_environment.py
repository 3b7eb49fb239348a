"""The measurement environment: `doctor`'s checks, `run`'s busy-host warning and --strict-environment,
and the datasets a cell could not see, all found before anything starts."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pynvml
import pytest
from rich.console import Console

from orchestrator.backends import hostinfo
from orchestrator.backends.doctor import cpu_environment_checks, gpu_environment_checks
from orchestrator.backends.hostinfo import Busy, CpuSettings, busy_between, cpu_settings
from orchestrator.errors import ExitCode, HostBusy, UsageError
from orchestrator.run import data, runner
from orchestrator.run.plan import Filters
from orchestrator.run.runner import RunRequest, run_matrix
from tests.unit.backends.test_monitor import FakeNvml, reading
from tests.unit.run.test_run_options import NO_ENGINE, SPEC

GIB = 1024**3
QUIET = Busy(0.05, ())
BURNER = Busy(1.9, ((4242, "python3", 1.0), (4243, "python3", 0.9)))


def by_name(checks):
    return {check.name: check for check in checks}


def test_a_tuned_quiet_host_passes_every_cpu_check():
    settings = CpuSettings(("performance",), False, False, 16, 100 * GIB, 128 * GIB)
    checks = cpu_environment_checks(settings, QUIET)
    assert all(check.ok for check in checks), [c for c in checks if not c.ok]


def test_each_cpu_setting_that_moves_the_numbers_warns_with_its_fix_and_blocks_nothing():
    settings = CpuSettings(("powersave",), True, True, 2, 1 * GIB, 8 * GIB)
    checks = by_name(cpu_environment_checks(settings, BURNER))
    assert not any(check.blocking for check in checks.values())
    assert "powersave: the clock ramps up with load" in checks["cpu governor"].detail
    assert checks["cpu governor"].fix == "cpupower frequency-set -g performance (root)"
    assert not checks["turbo boost"].ok and "no_turbo" in checks["turbo boost"].fix
    assert not checks["smt"].ok and "smt/control" in checks["smt"].fix
    other = checks["other work"]
    assert not other.ok and other.detail.startswith(
        "1.9 CPUs of other work over 1 s (pid 4242 python3 1.0, pid 4243 python3 0.9); load "
    )
    assert not checks["memory"].ok and checks["memory"].detail.startswith("1.0 of 8.0 GiB available")


def test_cpu_settings_are_read_from_sysfs_and_meminfo(tmp_path):
    for cpu in (0, 1):
        (tmp_path / f"cpu{cpu}/cpufreq").mkdir(parents=True)
        (tmp_path / f"cpu{cpu}/cpufreq/scaling_governor").write_text("schedutil\n")
    (tmp_path / "intel_pstate").mkdir()
    (tmp_path / "intel_pstate/no_turbo").write_text("0\n")
    (tmp_path / "smt").mkdir()
    (tmp_path / "smt/active").write_text("1\n")
    found = cpu_settings(tmp_path, "MemTotal:       25275972 kB\nMemAvailable:   22710432 kB\n")
    assert (found.governors, found.turbo, found.smt) == (("schedutil",), True, True)
    assert found.memory_available_bytes == 22710432 * 1024
    assert cpu_settings(tmp_path / "none", "").turbo is None  # a VM's kernel says nothing


def test_busy_leaves_this_process_out_and_names_the_busiest():
    before = {1: ("dockerd", 10.0), 7: ("python3", 100.0), 8: ("sshd", 5.0), 99: ("orchestrator", 3.0)}
    after = {1: ("dockerd", 10.02), 7: ("python3", 101.0), 8: ("sshd", 5.0), 99: ("orchestrator", 3.5)}
    busy = busy_between(500.0, 501.6, before, after, 1.0, own_pid=99)
    assert busy.cpus == pytest.approx(1.1)  # 1.6 busy on the host, 0.5 of it this process
    assert busy.top == ((7, "python3", pytest.approx(1.0)),)  # dockerd's 0.02 is noise
    short_lived = busy_between(500.0, 502.0, before, after, 1.0, own_pid=99)  # 0.48 more by a process now gone
    assert short_lived.text() == (
        "1.5 CPUs of other work over 1 s (pid 7 python3 1.0, 0.5 by processes that came and went)"
    )


class EnvironmentNvml(FakeNvml):
    """A GPU as a shared server has it: persistence off, clocks not locked, ECC changing, MIG on."""

    NVML_FEATURE_ENABLED = pynvml.NVML_FEATURE_ENABLED
    NVML_DEVICE_MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE

    def nvmlDeviceGetPersistenceMode(self, handle):
        return pynvml.NVML_FEATURE_DISABLED

    def nvmlDeviceGetApplicationsClock(self, handle, clock):
        return 1755

    def nvmlDeviceGetDefaultApplicationsClock(self, handle, clock):
        return 1755

    def nvmlDeviceGetEccMode(self, handle):
        return (pynvml.NVML_FEATURE_ENABLED, pynvml.NVML_FEATURE_DISABLED)

    def nvmlDeviceGetMigMode(self, handle):
        return (pynvml.NVML_DEVICE_MIG_ENABLE, pynvml.NVML_DEVICE_MIG_ENABLE)


def test_each_gpu_setting_that_moves_the_numbers_warns_with_its_fix():
    fake = EnvironmentNvml({0: [reading(0, processes=[(4242, 10035.2)])]})
    checks = by_name(gpu_environment_checks(fake))
    assert set(checks) == {f"gpu 0 {name}" for name in ("persistence", "clocks", "ecc", "mig", "processes")}
    assert not any(check.ok or check.blocking for check in checks.values())
    assert checks["gpu 0 persistence"].fix == "nvidia-smi -pm 1 (root)"
    assert "not locked" in checks["gpu 0 clocks"].detail and "--lock-gpu-clocks" in checks["gpu 0 clocks"].fix
    assert checks["gpu 0 ecc"].detail.endswith("changes at the next reboot")
    assert checks["gpu 0 processes"].detail.startswith("other processes use it: pid 4242 9.8 GiB")
    assert fake.open == 0
    assert gpu_environment_checks(FakeNvml({}, fail_init=True)) == []


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE["DOCKER_HOST"])
    data.sample("fashion_mnist", tmp_path / "data" / "fashion_mnist", n_train=100, n_test=20)
    for path in (tmp_path, tmp_path / "data"):
        path.chmod(0o755)
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    return tmp_path, spec


def request(tmp_path, spec, **options) -> RunRequest:
    return RunRequest(
        spec_path=spec,
        filters=Filters(),
        repeats=None,
        store=str(tmp_path / "r.db"),
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        **options,
    )


def test_strict_environment_refuses_a_busy_host_before_anything_starts(setup, monkeypatch):
    tmp_path, spec = setup
    monkeypatch.setattr(hostinfo, "host_busy", lambda: BURNER)
    with pytest.raises(HostBusy) as caught:
        run_matrix(request(tmp_path, spec, strict_environment=True), Console(file=io.StringIO()))
    assert caught.value.exit_code == ExitCode.HOST_BUSY == 9
    assert str(caught.value).startswith("the host is busy: 1.9 CPUs of other work over 1 s (pid 4242 python3 1.0")
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "results").exists()


def test_a_busy_host_gets_one_warning_line_before_the_first_cell(setup, monkeypatch):
    tmp_path, spec = setup
    monkeypatch.setattr(hostinfo, "host_busy", lambda: BURNER)
    out = io.StringIO()
    with pytest.raises(UsageError, match="no Docker engine answers"):  # the warning comes first, then the run
        run_matrix(request(tmp_path, spec), Console(file=out, width=400))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: the host is busy — 1.9 CPUs of other work")
    monkeypatch.setattr(hostinfo, "host_busy", lambda: QUIET)
    assert runner.busy_host([]) is None


def test_gpu_processes_make_a_gpu_run_busy(monkeypatch):
    monkeypatch.setattr(hostinfo, "host_busy", lambda: QUIET)
    monkeypatch.setattr(hostinfo, "gpu_processes", lambda: {0: [], 1: ["pid 4242 9.8 GiB"]})
    assert runner.busy_host([SimpleNamespace(gpus=1)]) == "GPU 1: pid 4242 9.8 GiB"


def test_a_dataset_with_a_link_leaving_its_folder_is_refused_naming_it(setup, tmp_path):
    _, spec = setup
    shared = tmp_path / "shared"
    shared.mkdir()
    folder = tmp_path / "data" / "fashion_mnist"
    moved = shared / "train-images-idx3-ubyte.gz"
    (folder / moved.name).rename(moved)
    (folder / moved.name).symlink_to(moved)
    with pytest.raises(UsageError) as caught:
        run_matrix(request(tmp_path, spec), Console(file=io.StringIO()))
    assert str(caught.value).startswith(
        f"dataset fashion_mnist: {folder / moved.name} -> {moved} point(s) outside {folder}, and a cell sees only"
    )
    assert not (tmp_path / "r.db").exists()


def test_a_dataset_folder_that_is_a_link_passes_the_checks(setup, tmp_path):
    _, spec = setup
    (tmp_path / "data" / "fashion_mnist").rename(tmp_path / "disk")
    (tmp_path / "data" / "fashion_mnist").symlink_to(tmp_path / "disk")
    data.require("fashion_mnist", tmp_path / "data" / "fashion_mnist")  # its target is what a cell mounts
