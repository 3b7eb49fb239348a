"""Is this host ready to run a matrix, and if not, what to do (the checks behind `doctor`).

Each check says what it found and, when that is a problem, the fix. A problem blocks a run only
where the run needs the thing: no NVIDIA runtime or no GPU blocks `gpu` systems, not `cpu` ones.
`doctor` exits 6 when anything blocks the asked-for system (default: cpu).

The measurement checks (governor, turbo, SMT, CPUs, other work, memory; on GPU systems persistence
mode, clocks, ECC, MIG and other processes per GPU) say what each means for the numbers and how
to fix it; they warn, never block: a run is still possible, its numbers less steady or disturbed.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import docker
import docker.errors
import pynvml
from sqlalchemy import update

from orchestrator.backends import hostinfo
from orchestrator.backends.engine import START_HINT, connect, find_orphans
from orchestrator.backends.hostinfo import Busy, CpuSettings
from orchestrator.backends.interference import DISTURBING_OTHER_CPUS, load1
from orchestrator.backends.monitor import MB, open_nvml
from orchestrator.errors import BenchmatrixError
from orchestrator.images.build import image_state
from orchestrator.spec.catalog import Catalog, load_catalog
from orchestrator.store.database import Store, meta

GIB = 1024**3
# Below this share of its memory available, a host pages out and cells compete for the page cache.
MIN_AVAILABLE_MEMORY_SHARE = 0.25
MIN_FREE_IMAGES_GIB = 10  # one framework image with its build layers takes 2–5 GiB
MIN_FREE_RESULTS_GIB = 1
TOOLKIT_HINT = (
    "install the NVIDIA Container Toolkit (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/) "
    "and restart dockerd; `nvidia-ctk runtime configure --runtime=docker` registers the runtime"
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    blocking: bool = False  # a failure stops a run of the asked-for system


def run_checks(kind: str, store: str, results_dir: Path) -> list[Check]:
    gpu = kind == "gpu"
    try:
        client: Optional[docker.DockerClient] = connect()
    except BenchmatrixError as exc:
        client = None
        checks = [Check("engine", False, str(exc).split(";")[0], START_HINT, blocking=True)]
    if client is not None:
        info = client.info()
        version = client.version()
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        checks = [
            Check("engine", True, f"Docker {version.get('Version')} (API {version.get('ApiVersion')}) at {where}"),
            _init_check(info),
            _runtime_check(info, gpu),
        ]
    checks.append(_gpu_check(gpu))
    if client is not None:
        docker_root = Path(info.get("DockerRootDir", "/var/lib/docker"))
        checks.append(_disk_check("image disk", docker_root, MIN_FREE_IMAGES_GIB))
    checks.append(_disk_check("results disk", results_dir, MIN_FREE_RESULTS_GIB))
    if client is not None:
        checks += _image_checks(client, load_catalog(), kind)
        orphans = find_orphans(client)
        checks.append(
            Check(
                "orphans",
                not orphans,
                f"{len(orphans)} cell container(s) of killed orchestrators" if orphans else "none",
                "the next `run` removes them",
            )
        )
    checks.append(_store_check(store))
    checks += cpu_environment_checks(hostinfo.cpu_settings(), hostinfo.host_busy())
    if gpu:
        checks += gpu_environment_checks()
    return checks


def cpu_environment_checks(settings: CpuSettings, busy: Busy) -> list[Check]:
    """What makes CPU timings drift or disturbed, with the fix; warnings only."""
    performance = settings.governors == ("performance",)
    governor = (
        Check("cpu governor", True, "not exposed (a VM or a fixed clock): nothing to set here")
        if not settings.governors
        else Check(
            "cpu governor",
            performance,
            f"{', '.join(settings.governors)}"
            + ("" if performance else ": the clock ramps up with load, so a cell's first seconds run slower"),
            "cpupower frequency-set -g performance (root)",
        )
    )
    turbo = _switch(
        "turbo boost",
        settings.turbo,
        "off: the clock stays put",
        "the clock follows temperature and how many cores are busy, so runs differ",
        "echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo (or 0 > .../cpufreq/boost), as root",
    )
    smt = _switch(
        "smt",
        settings.smt,
        "off: each CPU is a core",
        "two CPUs of a cell may be hyperthreads of one core, sharing its units",
        "echo off > /sys/devices/system/cpu/smt/control (root), or give cells one CPU per core (spec cpuset)",
    )
    cpus = Check("cpus", True, f"{settings.cpus} CPUs for cells (each gets them all, or --cpus-per-cell with --pack)")
    quiet = busy.cpus < DISTURBING_OTHER_CPUS
    other = Check(
        "other work",
        quiet,
        f"{busy.text()}; load {load1():.2f}"
        + ("" if quiet else ": cells on these CPUs share them, and their numbers are flagged disturbed"),
        "wait for that work to end, or stop it, before measuring",
    )
    available = settings.memory_available_bytes / max(settings.memory_total_bytes, 1)
    memory = Check(
        "memory",
        available >= MIN_AVAILABLE_MEMORY_SHARE,
        f"{settings.memory_available_bytes / GIB:.1f} of {settings.memory_total_bytes / GIB:.1f} GiB available"
        + ("" if available >= MIN_AVAILABLE_MEMORY_SHARE else ": cells compete for memory and the page cache"),
        "free memory (stop what uses it) before measuring",
    )
    return [governor, turbo, smt, cpus, other, memory]


def _switch(name: str, on: Optional[bool], off: str, on_means: str, fix: str) -> Check:
    """A CPU feature that moves the numbers when on; one the kernel does not expose is nothing to fix."""
    detail = {None: "not exposed: nothing to set here", False: off}.get(on, f"on: {on_means}")
    return Check(name, on is not True, detail, fix)


def gpu_environment_checks(module: Any = pynvml) -> list[Check]:
    """Per GPU: persistence mode, clocks, ECC, MIG and other processes (NVML); nothing without NVML."""
    nvml, _ = open_nvml(module)
    if nvml is None:
        return []
    checks = []
    try:
        for index in nvml.device_ids():
            handle = module.nvmlDeviceGetHandleByIndex(index)
            checks += _gpu_checks(module, index, handle)
    finally:
        nvml.close()
    return checks


def _nvml(call: Any, *arguments: Any) -> Any:
    """An NVML reading, or None where this GPU does not support it."""
    try:
        return call(*arguments)
    except pynvml.NVMLError:
        return None


def _gpu_checks(nv: Any, index: int, handle: Any) -> list[Check]:
    name = f"gpu {index} "
    persistent = _nvml(nv.nvmlDeviceGetPersistenceMode, handle) == nv.NVML_FEATURE_ENABLED
    checks = [
        Check(
            name + "persistence",
            persistent,
            "on" if persistent else "off: the driver re-initialises the GPU for each cell, clocks start from idle",
            "nvidia-smi -pm 1 (root)",
        )
    ]
    applied = _nvml(nv.nvmlDeviceGetApplicationsClock, handle, nv.NVML_CLOCK_SM)
    default = _nvml(nv.nvmlDeviceGetDefaultApplicationsClock, handle, nv.NVML_CLOCK_SM)
    maximum = _nvml(nv.nvmlDeviceGetMaxClockInfo, handle, nv.NVML_CLOCK_SM)
    locked = applied is not None and default is not None and applied != default
    checks.append(
        Check(
            name + "clocks",
            locked,
            f"application SM clock {applied} MHz (default {default}, max {maximum})"
            + ("" if locked else ": not locked, boost follows temperature and power, so cells and runs differ"),
            "nvidia-smi -ac <memory MHz>,<SM MHz> (root; the pairs: nvidia-smi -q -d SUPPORTED_CLOCKS) for steadier "
            "numbers; clocks locked with --lock-gpu-clocks are not visible to this check",
        )
    )
    ecc = _nvml(nv.nvmlDeviceGetEccMode, handle)
    if ecc is not None:
        current, pending = ecc
        detail = "on (a few % of memory bandwidth; compare runs with the same setting)" if current else "off"
        changing = current != pending
        checks.append(
            Check(name + "ecc", not changing, detail + (": changes at the next reboot" if changing else ""), "reboot")
        )
    mig = _nvml(nv.nvmlDeviceGetMigMode, handle)
    if mig is not None:
        on = mig[0] == nv.NVML_DEVICE_MIG_ENABLE
        checks.append(
            Check(
                name + "mig",
                not on,
                "on: cells get a slice of the GPU, and their figures are the slice's" if on else "off",
                "nvidia-smi -i <gpu> -mig 0 (root, GPU idle)",
            )
        )
    processes = _nvml(nv.nvmlDeviceGetComputeRunningProcesses, handle) or []
    listed = ", ".join(f"pid {p.pid} {(p.usedGpuMemory or 0) / MB / 1024:.1f} GiB" for p in processes)
    checks.append(
        Check(
            name + "processes",
            not processes,
            f"other processes use it: {listed}; cells on it share it (flagged disturbed)" if processes else "none",
            "wait for them to end, or give the system other device_ids",
        )
    )
    return checks


def _init_check(info: dict) -> Check:
    """Cells run with `init` (tini) so that a stop's SIGTERM reaches the workload."""
    binary = info.get("InitBinary") or "docker-init"
    local = info.get("Name") == os.uname().nodename
    found = shutil.which(binary) if local else binary
    if found:
        return Check("cell init", True, f"{binary} ({found})")
    return Check("cell init", False, f"the engine's init binary {binary} is missing", "apt-get install tini", True)


def _runtime_check(info: dict, gpu: bool) -> Check:
    runtimes = sorted(info.get("Runtimes") or {})
    hook = shutil.which("nvidia-container-runtime-hook") or shutil.which("nvidia-ctk")
    if "nvidia" in runtimes or hook:
        return Check("nvidia runtime", True, f"runtimes {', '.join(runtimes)}" + (f"; toolkit {hook}" if hook else ""))
    detail = f"no NVIDIA GPU runtime: engine runtimes are {', '.join(runtimes)}, no nvidia-container-toolkit found"
    detail += " — GPU systems cannot run here" + ("" if gpu else "; CPU systems are unaffected")
    return Check("nvidia runtime", False, detail, TOOLKIT_HINT, blocking=gpu)


def _gpu_check(gpu: bool) -> Check:
    found = hostinfo.gpus()
    if found:
        names = ", ".join(f"{g['index']}: {g['name']} ({g['memory_bytes'] / GIB:.0f} GiB)" for g in found)
        return Check("gpus", True, f"driver {found[0]['driver']}; {names}")
    _, reason = open_nvml()
    detail = reason.split(":")[0] if reason else "NVML sees no GPU"
    detail += "; GPU systems cannot run here" + ("" if gpu else " (CPU systems are unaffected)")
    return Check("gpus", False, detail, "install the NVIDIA driver (nvidia-smi must list the GPUs)", blocking=gpu)


def _disk_check(name: str, path: Path, minimum_gib: int) -> Check:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free / GIB
    ok = free >= minimum_gib
    fix = f"free at least {minimum_gib} GiB on the filesystem of {path} (e.g. `docker image prune`)"
    return Check(name, ok, f"{free:.1f} GiB free at {path}", "" if ok else fix, blocking=not ok)


def _image_checks(client: docker.DockerClient, catalog: Catalog, kind: str) -> list[Check]:
    """Bases block only when an image of the asked-for kind still has to be built on them."""
    entries = [entry for entry in catalog.images if entry.device == kind and not entry.unbuildable]
    states = {entry.tag: image_state(client, catalog, entry) for entry in entries}
    checks = []
    for name, base in catalog.bases.items():
        if base.suite is None:
            continue
        try:
            client.images.get(base.ref)
            checks.append(Check(f"base {name}", True, base.ref))
        except docker.errors.ImageNotFound:
            needed = [e.tag for e in entries if e.base == name and states[e.tag] != "current"]
            fix = f"python -m orchestrator base bootstrap --suite {base.suite}"
            detail = f"{base.ref} missing" + (f"; needed to build {', '.join(needed)}" if needed else "")
            checks.append(Check(f"base {name}", False, detail, fix, blocking=bool(needed)))
    current = sum(state == "current" for state in states.values())
    detail = f"{current} of {len(states)} {kind} images current"
    missing = [tag for tag, state in states.items() if state != "current"]
    detail += f"; to build: {', '.join(missing)}" if missing else ""
    checks.append(Check("images", not missing, detail, "`run` builds them"))
    return checks


def _store_check(location: str) -> Check:
    """Open the store and take a write lock in a transaction that is rolled back.

    A SQLite file that does not exist yet is not created: its folder must be writable.
    """
    path = Path(location)
    if "://" not in location and not path.exists():
        folder = next(parent for parent in path.absolute().parents if parent.exists())
        if os.access(folder, os.W_OK):
            return Check("store", True, f"{location} will be created (folder {folder} writable)")
        return Check("store", False, f"{location}: {folder} is not writable", "pass --store a writable path", True)
    try:
        store = Store(location)
        with store.engine.connect() as conn, conn.begin() as transaction:
            conn.execute(update(meta).values(value=meta.c.value))
            transaction.rollback()
    except Exception as exc:  # any driver's error: the point is to report it, not to crash
        return Check("store", False, f"{location}: {exc}", "pass --store a writable path or URL", blocking=True)
    return Check("store", True, f"{location} writable (schema {getattr(store, 'schema_version', '?')})")
