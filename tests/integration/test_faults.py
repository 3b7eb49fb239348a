"""Faults on the real engine, through the CLI as a user meets them: timeout, host OOM, crash,
Ctrl-C / SIGTERM / SIGKILL of the orchestrator, orphan clean-up and `--resume`; and a lost engine
connection (a socket proxy that is cut mid-cell) retried once.

The cells are MXNet MLPs on the tiny sample dataset; `slow` runs for minutes unless stopped.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker
import docker.errors
import pytest
from rich.console import Console
from rich.progress import Progress

from orchestrator.backends.engine import CELL_LABEL, OWNER_LABEL, RUN_LABEL
from orchestrator.backends.local import LocalBackend
from orchestrator.errors import ExitCode
from orchestrator.run.execute import Execution
from orchestrator.run.interrupts import InterruptGuard
from orchestrator.run.plan import Filters, plan
from orchestrator.run.scheduler import Allocator, Resources
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import load_spec
from orchestrator.store.database import Store
from tests.conftest import REPO
from tests.stores import add_run

SPEC = """\
name: faults
repeats: 1
reference: mxnet
systems: {cpu: {kind: cpu, memory: 2g}, tiny: {kind: cpu, memory: 40m}}
frameworks: [{name: mxnet, version: "1.9.1"}]
workloads:
  - {name: fast, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 640, warmup_steps: 5}
  - {name: slow, model: mlp, dataset: fashion_mnist, batch_sizes: [32], epochs: 1000, warmup_steps: 5}
"""
# A cell that trains for a few seconds: `fast` can end between two polls of a test that waits for it.
BRIEF_EPOCHS = "60"
BRIEF_WORKLOAD = (
    "  - {name: brief, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 640, "
    f"epochs: {BRIEF_EPOCHS}, warmup_steps: 5}}\n"
)


SEGFAULT_WORKLOAD = """
import os, signal
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) not in (1, os.getpid()) and b"workloads" in open(f"/proc/{pid}/cmdline", "rb").read():
        os.kill(int(pid), signal.SIGSEGV)
"""


@pytest.fixture
def work(tmp_path, sample_data, built_images):
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path


def run_args(work: Path, sample_data: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--spec",
        str(work / "spec.yaml"),
        "--data-dir",
        str(sample_data),
        "--results-dir",
        str(work / "results"),
        "--store",
        str(work / "results.db"),
        *extra,
    ]


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def training_container(engine: docker.DockerClient, pid: int, epochs: str = "1000", timeout: float = 180):
    """The cell container of orchestrator `pid` training for `epochs` (default: `slow`), once it trains."""
    owner = f"{socket.gethostname()}/{pid}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for container in engine.containers.list(filters={"label": RUN_LABEL}):
            command = container.attrs["Config"]["Cmd"]
            if (
                container.labels.get(OWNER_LABEL, "").startswith(owner)
                and command[command.index("--epochs") + 1] == epochs
                and b"benchmatrix:" in container.logs()
            ):
                return container
        time.sleep(0.3)
    raise AssertionError(f"no training container of pid {pid} within {timeout} s")


def gone(engine: docker.DockerClient, container_id: str) -> bool:
    try:
        engine.containers.get(container_id)
    except docker.errors.NotFound:
        return True
    return False


def rows_of(work: Path) -> tuple[Store, str, list[dict]]:
    store = Store(str(work / "results.db"))
    run_id = store.resolve_run("last")
    return store, run_id, store.cell_rows(run_id)


def test_timeout_kills_the_cell_and_stores_timeout(work, sample_data, cli, engine):
    done = cli(*run_args(work, sample_data, "--workload", "slow", "--timeout", "4"))
    assert done.returncode == ExitCode.CELLS_FAILED, done.stdout + done.stderr
    _, run_id, rows = rows_of(work)
    assert [row.status for row in rows] == ["timeout"]
    assert (
        "killed after 4 s" in rows[0].notes and "timeout 4 s (--timeout; the spec says 1800 s)" in rows[0].notes
    )
    assert "Timeout" in done.stdout  # the speed table says so instead of a number
    assert not engine.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})


def test_host_out_of_memory_is_stored_as_oom(work, sample_data, cli):
    """MXNet's import plus the data need ~60–75 MB; the `tiny` system gives the cell 40 MB."""
    done = cli(*run_args(work, sample_data, "--system", "tiny", "--workload", "fast"))
    assert done.returncode == ExitCode.CELLS_FAILED, done.stdout + done.stderr
    _, _, rows = rows_of(work)
    assert [(row.status, row.exit_code) for row in rows] == [("oom", 137)]
    assert "Out of Memory" in done.stdout


def test_crash_is_stored_as_error_with_exit_code_and_log_tail(work, sample_data, engine):
    proc = start_cli(*run_args(work, sample_data, "--workload", "slow"))
    container = training_container(engine, proc.pid)
    # The workload process gets SIGSEGV, as in a native crash (tini, PID 1, exits 128 + the signal).
    crash = container.exec_run(["python3", "-c", SEGFAULT_WORKLOAD])
    assert crash.exit_code == 0, crash.output
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.CELLS_FAILED, out
    _, _, rows = rows_of(work)
    assert [(row.status, row.exit_code) for row in rows] == [("error", 139)]
    assert "exit code 139: the workload was ended by SIGSEGV" in rows[0].notes
    # workloads.crashes: Python's faulthandler, not MXNet's own handler (which can hang), reports it.
    assert "Fatal Python error: Segmentation fault" in rows[0].log_tail
    assert "benchmatrix: mxnet mlp" in Path(rows[0].log_path).read_text()
    assert gone(engine, container.id)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_cells_marks_the_run_interrupted_and_resume_reruns_them(work, sample_data, engine, cli, sig):
    proc = start_cli(*run_args(work, sample_data, "--workload", "slow"))
    container = training_container(engine, proc.pid)
    signalled = time.monotonic()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - signalled
    assert proc.returncode == 130, out
    assert f"interrupted by {sig.name}" in out and "--resume" in out
    assert stopped_in < 20, f"took {stopped_in:.1f} s to stop"
    assert gone(engine, container.id)
    store, run_id, rows = rows_of(work)
    assert store.run_row(run_id).status == "interrupted"
    assert [(row.workload, row.status) for row in rows] == [("slow", "interrupted")]

    resumed = cli(*run_args(work, sample_data, "--workload", "slow", "--resume", run_id, "--timeout", "3"))
    # the rerun times out: a final status
    assert resumed.returncode == ExitCode.CELLS_FAILED, resumed.stdout + resumed.stderr
    assert f"resuming run {run_id}" in resumed.stdout
    rows = store.cell_rows(run_id)
    assert [(row.workload, row.status) for row in rows] == [("slow", "timeout")]  # replaced, not added
    assert store.run_row(run_id).status == "finished"


def test_resume_while_the_orchestrator_runs_is_refused_and_the_run_completes(work, sample_data, engine, cli):
    """One orchestrator per run: the second is refused (exit 2, naming the first) before it touches anything."""
    (work / "spec.yaml").write_text(SPEC + BRIEF_WORKLOAD)
    proc = start_cli(*run_args(work, sample_data, "--workload", "brief", "--repeats", "2"))
    try:
        training_container(engine, proc.pid, epochs=BRIEF_EPOCHS)
        resumed = cli(*run_args(work, sample_data, "--resume", "last"))
        out, _ = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert resumed.returncode == ExitCode.USAGE, resumed.stdout + resumed.stderr
    assert f"its orchestrator {socket.gethostname()}/{proc.pid}/" in resumed.stderr
    assert "is still running it" in resumed.stderr and "Traceback" not in resumed.stderr
    assert proc.returncode == 0, out[-3000:]
    store, run_id, rows = rows_of(work)
    assert [row.status for row in rows] == ["ok", "ok"]
    assert not any("retried" in note for row in rows for note in row.notes)  # no container of it was removed
    assert len({(row.config_hash, row.repeat) for row in rows}) == 2  # no cell stored twice
    assert store.run_row(run_id).status == "finished"


def test_sigkill_leaves_an_orphan_the_next_start_removes_and_resume_skips_finished_cells(
    work, sample_data, engine, cli
):
    proc = start_cli(*run_args(work, sample_data))  # fast, then slow
    container = training_container(engine, proc.pid)
    store, run_id, rows = rows_of(work)
    assert [(row.workload, row.status) for row in rows] == [("fast", "ok")]
    proc.kill()
    proc.communicate(timeout=30)
    container.reload()
    assert container.status == "running"  # SIGKILL: nobody stopped it
    assert store.run_row(run_id).status == "running"

    resumed = cli(*run_args(work, sample_data, "--resume", "last", "--timeout", "3"))
    assert resumed.returncode == ExitCode.CELLS_FAILED, resumed.stdout + resumed.stderr
    assert f"removed orphan container {container.id[:12]} (running) of run {run_id}" in resumed.stdout
    assert gone(engine, container.id)
    assert "already stored: 1 of 2 cells; 1 to run" in resumed.stdout
    after = store.cell_rows(run_id)
    assert [(row.workload, row.status) for row in after] == [("fast", "ok"), ("slow", "timeout")]
    assert after[0].id == rows[0].id  # the finished cell was not run or written again
    assert len({(row.config_hash, row.repeat) for row in after}) == len(after)
    assert store.run_row(run_id).status == "finished"


class CuttableEngineSocket:
    """A unix-socket proxy in front of the engine; `cut` drops every connection and refuses new
    ones for a while — what the SDK sees when dockerd restarts, without restarting the shared one."""

    def __init__(self, path: Path, target: str) -> None:
        self.target = target
        self.refusing = threading.Event()
        self.open: list[socket.socket] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.refusing.is_set():
                client.close()
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self, seconds: float) -> None:
        self.refusing.set()
        for end in self.open:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        self.open.clear()
        threading.Timer(seconds, self.refusing.clear).start()

    def close(self) -> None:
        self.server.close()


def test_a_cell_that_loses_the_engine_is_retried_once(work, sample_data, engine, tmp_path):
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip(f"the proxy needs a unix-socket engine, DOCKER_HOST is {host}")
    proxy = CuttableEngineSocket(tmp_path / "engine.sock", host[len("unix://") :])
    client = docker.DockerClient(base_url=f"unix://{tmp_path / 'engine.sock'}", timeout=600)
    (work / "brief.yaml").write_text(SPEC + BRIEF_WORKLOAD)
    spec = load_spec(work / "brief.yaml")
    cells = plan(spec, work / "brief.yaml", load_catalog(), Filters(system="cpu", workloads=("brief",)))
    image_id = engine.images.get(cells[0].image).id
    store = Store(str(tmp_path / "results.db"))
    add_run(store, "lost", spec_name="faults", reference="mxnet")
    console = Console(file=io.StringIO(), width=200)
    execution = Execution(
        backend=LocalBackend(client, sample_data.resolve()),
        store=store,
        run_id="lost",
        run_dir=tmp_path / "runs",
        images={cells[0].image: image_id},
        allocator=Allocator(Resources(gpus=(), cpus=(0, 1))),
        guard=InterruptGuard(),
        console=console,
        progress=Progress(console=console),
    )
    first: list[str] = []

    def cut_when_training() -> None:
        container = training_container(engine, os.getpid(), epochs=BRIEF_EPOCHS)
        first.append(container.id)
        proxy.cut(seconds=3)

    cutter = threading.Thread(target=cut_when_training)
    cutter.start()
    try:
        execution.run(cells)
    finally:
        cutter.join(timeout=200)
        proxy.close()
    rows = store.cell_rows("lost")
    assert [row.status for row in rows] == ["ok"], rows
    assert rows[0].notes[0].startswith("retried once: the first attempt lost the backend")
    assert first and gone(engine, first[0])  # the first attempt's container did not run on beside the retry
    assert not engine.containers.list(all=True, filters={"label": [f"{RUN_LABEL}=lost", f"{CELL_LABEL}"]})
