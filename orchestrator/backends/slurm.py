"""Run cells on a Slurm cluster: each cell is one `sbatch` job, run on its node's Docker engine.

The job runs `python -m orchestrator run-cell JOB_FILE` (`slurm_node`), which runs the cell with
`LocalBackend` exactly as a local run does. This backend submits, follows the jobs with one
`squeue` per interval (no accounting database needed), and turns how a job ended into the same
`CellRun` a local cell ends with, so the runner, the store and the reports never know which ran it.

The cluster must share with this host, at the same paths: the results and data directories, and
this checkout with its virtual environment (the job runs `sys.executable`). The cells' images
must be on every node's engine with the same ids (`bundle save` here, `bundle load` there).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from pydantic import ValidationError

from orchestrator.backends import (
    LOG_FILE,
    LOG_TAIL_CHARS,
    BackendError,
    BackendLost,
    BackendName,
    CellRun,
    CellTask,
    Reaped,
)
from orchestrator.backends.engine import owner_alive, owner_id
from orchestrator.backends.slurm_node import OUTCOME_FILE, read_outcome, write_job_file
from orchestrator.errors import UsageError
from orchestrator.run.plan import Cell
from orchestrator.run.scheduler import Allocator, Placement, Resources, parse_cpuset
from orchestrator.spec.matrix import SlurmPlacement

# Room in the job's time limit beyond the cell's own timeout: engine start, image checks, clean-up.
JOB_MARGIN_S = 300
COMMENT_PREFIX = "benchmatrix run="
# How long the controller may not answer before the cells in flight count as lost (retried once).
CONTROLLER_GRACE_S = 120
COMMAND_TIMEOUT_S = 60
JOB_SCRIPT = '#!/bin/sh\n# benchmatrix: runs its arguments (python -m orchestrator run-cell JOB_FILE)\nexec "$@"\n'
FINAL_STATES = {
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "CANCELLED",
    "NODE_FAIL",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
    "REVOKED",
    "SPECIAL_EXIT",
}
CLI_NAMES = {"partition": "--slurm-partition", "account": "--slurm-account", "time_limit_min": "--slurm-time-limit"}
VANISHED = "VANISHED"  # no longer known to the controller (MinJobAge passed): only the node's outcome tells


@dataclass(frozen=True)
class SlurmOptions:
    """How jobs are submitted. `placement` holds the CLI's --slurm-* values; a system's spec fills the rest."""

    placement: SlurmPlacement = SlurmPlacement()
    cpus_per_cell: int = 1
    exclusive: bool = True  # a node to itself per cell, as a local cell has the host (measurement fidelity)
    poll_s: float = 2.0

    @classmethod
    def from_cli(
        cls,
        partition: Optional[str],
        account: Optional[str],
        time_limit_min: Optional[int],
        cpus_per_cell: int,
        pack: bool = False,
    ) -> SlurmOptions:
        if cpus_per_cell < 1:
            raise UsageError(f"--cpus-per-cell must be at least 1, got {cpus_per_cell}")
        try:
            placement = SlurmPlacement(partition=partition, account=account, time_limit_min=time_limit_min)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UsageError(f"{CLI_NAMES[str(first['loc'][0])]} {first['input']!r}: {first['msg']}") from exc
        return cls(placement=placement, cpus_per_cell=cpus_per_cell, exclusive=not pack)

    def for_system(self, system: Optional[SlurmPlacement]) -> SlurmOptions:
        if system is None:
            return self
        merged = {**system.model_dump(exclude_none=True), **self.placement.model_dump(exclude_none=True)}
        return replace(self, placement=SlurmPlacement(**merged))


@dataclass(frozen=True)
class JobEnd:
    job_id: str
    state: str
    exit_code: Optional[int]
    node: str
    time_limit_min: int


def slurm_memory(memory: str) -> str:
    """The spec's memory ('8g', '512m', bytes) as sbatch --mem takes it (K/M/G, bare number = MB)."""
    if memory[-1].isdigit():
        return f"{math.ceil(int(memory) / 2**20)}M"
    return memory[:-1] + memory[-1].upper()


def time_limit_min(task: CellTask, options: SlurmOptions) -> int:
    return options.placement.time_limit_min or math.ceil((task.timeout_s + JOB_MARGIN_S) / 60)


def cpus_for(cell: Cell, options: SlurmOptions) -> Optional[int]:
    """CPUs the job asks for: its cpuset's size; with --pack, --cpus-per-cell; else none, since an
    exclusive job gets its whole node, however many CPUs that node has."""
    if cell.cpuset:
        return len(parse_cpuset(cell.cpuset))
    return None if options.exclusive else options.cpus_per_cell


def memory_mb(memory: str) -> int:
    """The spec's memory ('8g', '512m', '100k', bytes) in MB, as sinfo reports a node's."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024}
    if memory[-1] in units:
        return math.ceil(int(memory[:-1]) * units[memory[-1]])
    return math.ceil(int(memory) / 2**20)


@dataclass(frozen=True)
class Size:
    """CPUs, memory and GPUs: what a node has, or what a job asks for (0: asks for none)."""

    cpus: int
    memory_mb: int
    gpus: int

    def fits_in(self, node: Size) -> bool:
        return self.cpus <= node.cpus and self.memory_mb <= node.memory_mb and self.gpus <= node.gpus

    def describe(self) -> str:
        return f"{self.cpus} CPU(s), {self.memory_mb} MB of memory, {self.gpus} GPU(s)"


def job_size(cell: Cell, options: SlurmOptions) -> Size:
    return Size(cpus_for(cell, options) or 1, memory_mb(cell.memory) if cell.memory else 0, cell.gpus)


def parse_sinfo_nodes(text: str) -> tuple[dict[str, dict[str, Size]], Optional[str]]:
    """`sinfo --Node -o %N|%P|%c|%m|%G` → partition → node → size, and the default partition (marked '*')."""
    partitions: dict[str, dict[str, Size]] = {}
    default = None
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5 or not parts[2].isdigit():
            continue
        node, partition, cpus, memory, gres = parts
        if partition.endswith("*"):
            partition = default = partition[:-1]
        memory_found = int(memory) if memory.isdigit() else 0
        partitions.setdefault(partition, {})[node] = Size(int(cpus), memory_found, gpu_count(gres))
    return partitions, default


def gpu_count(gres: str) -> int:
    """GPUs in a node's Gres ('gpu:4', 'gpu:a100:2(S:0-1)', '(null)')."""
    total = 0
    for item in re.sub(r"\([^)]*\)", "", gres).split(","):
        fields = item.split(":")
        if fields[0] == "gpu" and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def refuse_what_no_node_fits(cells: list[Cell], options: SlurmOptions, nodes: dict[str, Size], partition: str) -> None:
    """A job no node of its partition can hold would pend forever: refuse it, naming the largest node."""
    largest_name, largest = max(nodes.items(), key=lambda item: (item[1].cpus, item[1].memory_mb, item[1].gpus))
    for cell in cells:
        wanted = job_size(cell, options)
        if not any(wanted.fits_in(node) for node in nodes.values()):
            raise UsageError(
                f"system {cell.system}: each job asks for {wanted.describe()}, and no node of Slurm partition "
                f"{partition} has that; its largest, {largest_name}, has {largest.describe()}"
                + ("" if cell.cpuset or options.exclusive else " (lower --cpus-per-cell)")
            )


def pending_summary(states: dict[str, tuple[str, str, str]], jobs: list[str]) -> str:
    """'2 of 3 jobs pending (Resources: 2)': how many of `jobs` wait, and Slurm's reasons; '' when none."""
    reasons = Counter(states[job][2] or "no reason given" for job in jobs if states.get(job, ("",))[0] == "PENDING")
    if not reasons:
        return ""
    why = ", ".join(f"{reason}: {count}" for reason, count in reasons.most_common())
    return f"{sum(reasons.values())} of {len(jobs)} jobs pending ({why})"


def sbatch_argv(task: CellTask, options: SlurmOptions, script: Path, job_file: Path) -> list[str]:
    """One job for one cell; every value is validated (spec, options) or made here — no shell."""
    cell = task.cell
    argv = [
        "sbatch",
        "--parsable",
        f"--job-name=bm-{cell.config_hash}-r{cell.repeat}",
        f"--comment={COMMENT_PREFIX}{task.run_id} owner={owner_id()}",
        f"--output={task.cell_dir.resolve()}/slurm-%j.out",
        f"--chdir={Path.cwd()}",
        f"--time={time_limit_min(task, options)}",
        "--nodes=1",
        "--ntasks=1",
    ]
    cpus = cpus_for(cell, options)
    if cpus is not None:
        argv.append(f"--cpus-per-task={cpus}")
    if options.exclusive:
        argv.append("--exclusive")
    if cell.gpus:
        argv.append(f"--gres=gpu:{cell.gpus}")
    if cell.memory:
        argv.append(f"--mem={slurm_memory(cell.memory)}")
    if options.placement.partition:
        argv.append(f"--partition={options.placement.partition}")
    if options.placement.account:
        argv.append(f"--account={options.placement.account}")
    return argv + [str(script), sys.executable, "-m", "orchestrator", "run-cell", str(job_file)]


def parse_squeue(text: str) -> dict[str, tuple[str, str, str]]:
    """`squeue -o %i|%T|%N|%r` lines → job id → (state, node, reason it pends)."""
    found = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            reason = parts[3] if parts[3] != "None" else ""
            found[parts[0]] = (parts[1].split()[0].rstrip("+"), parts[2], reason)
    return found


def parse_exit_code(scontrol_line: str) -> Optional[int]:
    """`ExitCode=1:0` (status:signal) from `scontrol show job -o`; a signal counts as 128 + signal."""
    match = re.search(r"(?:^|\s)ExitCode=(\d+):(\d+)", scontrol_line)
    if not match:
        return None
    status, signal = int(match.group(1)), int(match.group(2))
    return 128 + signal if signal else status


def outcome_from_job(end: JobEnd, node_said: Optional[CellRun], logs: str) -> CellRun:
    """Map a finished job onto a CellRun: the node's own account when it wrote one, Slurm's verdict on top."""
    note = f"slurm job {end.job_id} on {end.node or 'no node'}: {end.state}"
    if end.state == "TIMEOUT":
        note += f" (the job's time limit of {end.time_limit_min} min ran out)"
    ended = node_said or CellRun(
        exit_code=None if end.state == "COMPLETED" else end.exit_code,
        timed_out=False,
        oom_killed=False,
        logs=logs + f"\n{note}: the job ended without the cell's outcome (see the slurm-*.out file)",
    )
    flags: dict = {}
    if end.state in ("TIMEOUT", "DEADLINE"):
        flags = {"timed_out": True, "interrupted": False}
    elif end.state == "OUT_OF_MEMORY":
        flags = {"oom_killed": True, "interrupted": False}
    elif end.state in ("CANCELLED", "PREEMPTED"):
        flags = {"interrupted": True}
    return replace(ended, notes=(*ended.notes, note), **flags)


class Slurm:
    """The few Slurm commands the backend needs, as argv lists; a controller that does not answer is lost."""

    def __init__(self) -> None:
        self.silent_since: Optional[float] = None

    def call(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        except FileNotFoundError as exc:
            raise UsageError(f"{argv[0]} not found: run on a Slurm submit host (package slurm-client)") from exc
        except subprocess.TimeoutExpired as exc:
            raise BackendLost(f"{argv[0]} got no answer within {COMMAND_TIMEOUT_S} s") from exc
        if check and done.returncode != 0 and _controller_down(done.stderr):
            raise BackendLost(f"{argv[0]}: the Slurm controller does not answer: {done.stderr.strip()}")
        return done

    def check_cluster(self) -> None:
        done = self.call(["sinfo", "--noheader", "--format=%P %a %D %T"], check=False)
        if done.returncode != 0:
            raise UsageError(
                f"no Slurm controller answers (sinfo: {done.stderr.strip()}); for a test cluster on this "
                "host: `scripts/slurm-local.sh start` and export the SLURM_CONF it prints"
            )

    def nodes(self, partition: Optional[str]) -> tuple[str, dict[str, Size]]:
        """The partition's name (None: the default one) and the size of each of its nodes."""
        done = self.call(["sinfo", "--noheader", "--Node", "--format=%N|%P|%c|%m|%G"], check=False)
        if done.returncode != 0:
            raise UsageError(f"sinfo could not list the nodes: {done.stderr.strip()}")
        partitions, default = parse_sinfo_nodes(done.stdout)
        name = partition or default
        if name not in partitions:
            known = ", ".join(sorted(partitions)) or "none"
            raise UsageError(
                f"Slurm partition {name or '(default)'}: not on this cluster (partitions: {known}); "
                "set --slurm-partition or the system's slurm.partition"
            )
        return name, partitions[name]

    def states(self, job_ids: list[str]) -> Optional[dict[str, tuple[str, str, str]]]:
        """Every listed job the controller still knows: state, node, why it pends; None during a brief outage."""
        if not job_ids:
            return {}
        argv = ["squeue", "--noheader", "--states=all", f"--jobs={','.join(job_ids)}", "--format=%i|%T|%N|%r"]
        done = self.call(argv, check=False)
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            self.silent_since = self.silent_since or time.monotonic()
            if time.monotonic() - self.silent_since > CONTROLLER_GRACE_S:
                raise BackendLost(f"squeue failed for {CONTROLLER_GRACE_S} s: {done.stderr.strip()}")
            return None
        self.silent_since = None
        return parse_squeue(done.stdout)

    def exit_code(self, job_id: str) -> Optional[int]:
        return parse_exit_code(self.call(["scontrol", "show", "job", "--oneliner", job_id], check=False).stdout)


def _controller_down(stderr: str) -> bool:
    return any(
        marker in stderr for marker in ("Unable to contact slurm controller", "Socket timed out", "Connection refused")
    )


class SlurmBackend:
    """Backend whose `run_cell` submits one job and waits for it; the runner calls it from worker threads."""

    name = BackendName.SLURM

    def __init__(
        self,
        options: SlurmOptions,
        data_dir: Path,
        sample_hz: float = 1.0,
        on_pending: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.options = options
        self.data_dir = data_dir
        self.sample_hz = sample_hz
        self.on_pending = on_pending  # told how many jobs pend and why, whenever that changes
        self.slurm = Slurm()
        self.slurm.check_cluster()
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._states: dict[str, tuple[str, str, str]] = {}
        self._polled_at = 0.0
        self._pending = ""
        self._cancelled = False

    def run_cell(self, task: CellTask) -> CellRun:
        """The node's outcome, its host record included; a job file that cannot be written is the cell's
        error, a node that lost its engine is `BackendLost`, one whose engine refused the cell `BackendError`."""
        try:
            task.cell_dir.mkdir(parents=True, exist_ok=True)
            (task.cell_dir / OUTCOME_FILE).unlink(missing_ok=True)
            job_file = write_job_file(task, self.data_dir, self.sample_hz)
            script = self._script(task.cell_dir.parent)
        except OSError as exc:
            raise BackendError(f"{task.cell.label}: cannot write its Slurm job: {exc}") from exc
        with self._lock:
            if self._cancelled:
                return CellRun(exit_code=None, timed_out=False, oom_killed=False, logs="", interrupted=True)
            done = self.slurm.call(sbatch_argv(task, self.options, script, job_file))
            if done.returncode != 0:
                why = f"sbatch refused the job: {done.stderr.strip()}"
                return CellRun(exit_code=None, timed_out=False, oom_killed=False, logs=why, notes=(why,))
            job_id = done.stdout.strip().split(";")[0]
            self._in_flight.add(job_id)
        try:
            end = self._wait(job_id, time_limit_min(task, self.options))
        finally:
            with self._lock:
                self._in_flight.discard(job_id)
        logs = _read_tail(task.cell_dir / LOG_FILE) or _read_tail(task.cell_dir / f"slurm-{job_id}.out")
        outcome = read_outcome(task, logs)
        if outcome is not None and outcome["lost"]:
            raise BackendLost(f"slurm job {job_id} on {end.node}: {outcome['lost']}")
        if outcome is not None and outcome.get("error"):
            raise BackendError(f"slurm job {job_id} on {end.node}: {outcome['error']}")
        return outcome_from_job(end, outcome["ended"] if outcome else None, logs)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            jobs = sorted(self._in_flight)
        if jobs:
            self.slurm.call(["scancel", *jobs], check=False)

    def reap_orphans(self) -> list[Reaped]:
        """Jobs of an orchestrator on this host that was killed: cancelled, so a resumed run does not race them."""
        done = self.slurm.call(["squeue", "--noheader", "--me", "--format=%i|%k"], check=False)
        reaped = []
        for line in done.stdout.splitlines():
            job_id, _, comment = line.partition("|")
            if not comment.startswith(COMMENT_PREFIX):
                continue
            run_id, _, owner = comment[len(COMMENT_PREFIX) :].partition(" owner=")
            if owner and not owner_alive(owner):
                self.slurm.call(["scancel", job_id.strip()], check=False)
                reaped.append(Reaped(run_id, f"cancelled slurm job {job_id.strip()} of run {run_id}: {owner} is gone"))
        return reaped

    def _wait(self, job_id: str, limit_min: int) -> JobEnd:
        """Poll until the job is final; one `squeue` per interval serves every waiting thread."""
        while True:
            with self._lock:
                if time.monotonic() - self._polled_at >= self.options.poll_s:
                    self._poll()
                state, node, _ = self._states.get(job_id, ("PENDING", "", ""))
            if state in FINAL_STATES or state == VANISHED:
                return JobEnd(job_id, state, self.slurm.exit_code(job_id), node, limit_min)
            time.sleep(self.options.poll_s / 2)

    def _poll(self) -> None:
        """Refresh every job in flight; one the controller no longer knows (aged out) has vanished."""
        in_flight = sorted(self._in_flight)
        found = self.slurm.states(in_flight)
        if found is not None:
            self._states.update(found)
            self._states.update({job: (VANISHED, "", "") for job in in_flight if job not in found})
            pending = pending_summary(self._states, in_flight)
            if pending != self._pending:
                self.on_pending(f"slurm: {pending}" if pending else "slurm: no job pending")
                self._pending = pending
        self._polled_at = time.monotonic()

    def _script(self, run_dir: Path) -> Path:
        script = run_dir / "slurm-job.sh"
        with self._lock:
            if not script.is_file():
                script.write_text(JOB_SCRIPT)
                script.chmod(0o755)
        return script


def _read_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return ""


class ClusterAllocator(Allocator):
    """Slurm places the cells: every cell may be submitted at once, and its node's devices come from Slurm."""

    def __init__(self, options: SlurmOptions) -> None:
        super().__init__(Resources(gpus=(), cpus=()))
        self.options = options
        self.slurm = Slurm()

    def check(self, cells: list[Cell]) -> None:
        """Before anything is submitted: a controller answers, and some node of the partition fits each job
        (Slurm would let a job no node fits pend for ever)."""
        self.slurm.check_cluster()
        partition, nodes = self.slurm.nodes(self.options.placement.partition)
        refuse_what_no_node_fits(cells, self.options, nodes, partition)

    def place(self, cell: Cell) -> Placement:
        self.running += 1
        return Placement()

    def release(self, placement: Placement) -> None:
        self.running -= 1
