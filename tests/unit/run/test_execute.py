"""The runner's fault logic with a scripted backend (the real engine is in tests/integration/test_faults.py).

The engine restart case is tested here only: restarting the shared dockerd would kill every other
container on this host. The backend raises BackendLost exactly as LocalBackend does when the
SDK's connection to the engine breaks.
"""

from __future__ import annotations

import io
import re
import threading
import time
from dataclasses import replace

import pytest
from rich.console import Console
from rich.progress import Progress

from orchestrator.backends import BackendError, BackendLost, CellRun, CellTask
from orchestrator.clock import now
from orchestrator.errors import EngineLostTwice
from orchestrator.run.execute import Execution, failed_record
from orchestrator.run.interrupts import InterruptGuard
from orchestrator.run.scheduler import Allocator, Resources
from orchestrator.store.database import Store
from tests.results import result
from tests.stores import add_run
from tests.unit.run.test_scheduler import cell
from workloads.result import Warmup, write_result

RESULT = result(
    warmup=Warmup("steps", 5, "first 5 steps of epoch 1 excluded from train_img_per_s"),
    train_img_per_s=1000.0,
    versions={"mxnet": "1.9.1"},
    notes=["trained on the first 100 samples"],
)


def ok_run(task: CellTask) -> CellRun:
    task.cell_dir.mkdir(parents=True, exist_ok=True)
    write_result(RESULT, task.cell_dir / "result.json")
    return CellRun(exit_code=0, timed_out=False, oom_killed=False, logs="done")


class ScriptedBackend:
    """Answers each call from a list of actions (a CellRun factory or an exception), in order."""

    name = "scripted"

    def __init__(self, *actions) -> None:
        self.actions = list(actions)
        self.calls: list[CellTask] = []
        self.cancelled = threading.Event()

    def run_cell(self, task: CellTask) -> CellRun:
        self.calls.append(task)
        action = self.actions.pop(0)
        if isinstance(action, BaseException):
            raise action
        return action(task)

    def cancel(self) -> None:
        self.cancelled.set()

    def reap_orphans(self):
        return []


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "results.db"))
    add_run(store, "run1", reference="mxnet")
    return store


def execution(backend, store, tmp_path, guard=None, pack=False, replace=frozenset()) -> Execution:
    console = Console(file=io.StringIO(), width=200)
    resources = Resources(gpus=(), cpus=(0, 1))
    return Execution(
        backend=backend,
        store=store,
        run_id="run1",
        run_dir=tmp_path / "runs",
        images={"benchmatrix/mxnet:1.9.1-cpu": "sha256:abc"},
        allocator=Allocator(resources, pack=pack, cpus_per_cell=1),
        guard=guard or InterruptGuard(),
        console=console,
        progress=Progress(console=console),
        replace=replace,
    )


def test_a_cell_that_lost_the_engine_is_stored_retryable_then_retried_once(store, tmp_path):
    backend = ScriptedBackend(BackendLost("connection reset by the engine"), ok_run)
    run = execution(backend, store, tmp_path)
    run.run([cell()])
    assert len(backend.calls) == 2
    rows = store.cell_rows("run1")
    assert len(rows) == 1  # the retry replaced the retryable row
    assert rows[0].status == "ok" and rows[0].metrics["train_img_per_s"] == 1000.0
    assert rows[0].notes[0].startswith("retried once: the first attempt lost the backend")
    assert rows[0].notes[-2:] == [RESULT.warmup.note, *RESULT.notes]  # the result's own notes, after the runner's
    assert run.statuses == {"ok": 1}


def test_losing_the_engine_again_on_the_retry_stops_the_run_resumably(store, tmp_path):
    backend = ScriptedBackend(BackendLost("gone"), BackendLost("still gone"), ok_run)
    with pytest.raises(EngineLostTwice, match="still gone"):
        execution(backend, store, tmp_path).run([cell(), cell(repeat=1)])
    rows = store.cell_rows("run1")
    assert [(row.repeat, row.status) for row in rows] == [(0, "retryable")]
    assert "retryable: still gone" in rows[0].notes[0]
    assert backend.cancelled.is_set() and len(backend.calls) == 2  # the second cell never started


def test_an_engine_error_is_stored_as_the_cells_error_and_the_matrix_goes_on(store, tmp_path):
    # What LocalBackend raises for Docker's APIError (tests/unit/backends/test_local_backend.py).
    refusal = BackendError('the Docker engine refused: could not select device driver "" with capabilities: [[gpu]]')
    backend = ScriptedBackend(refusal, ok_run)
    run = execution(backend, store, tmp_path)
    run.run([cell(), cell(repeat=1)])
    statuses = [(row.repeat, row.status) for row in store.cell_rows("run1")]
    assert statuses == [(0, "error"), (1, "ok")]
    assert "could not select device driver" in store.cell_rows("run1")[0].log_tail


def test_an_interrupt_stops_running_cells_stores_them_interrupted_and_starts_no_more(store, tmp_path):
    guard = InterruptGuard()
    guard.deferred = True
    started = threading.Event()

    def blocks_until_cancelled(task):
        started.set()
        assert backend.cancelled.wait(30)
        return CellRun(exit_code=143, timed_out=False, oom_killed=False, logs="Terminated", interrupted=True)

    backend = ScriptedBackend(blocks_until_cancelled, ok_run)
    threading.Timer(0, lambda: started.wait(30) and setattr(guard, "requested", "SIGINT")).start()
    run = execution(backend, store, tmp_path, guard=guard)
    begun = time.monotonic()
    run.run([cell(), cell(repeat=1)])
    assert time.monotonic() - begun < 10
    rows = store.cell_rows("run1")
    assert [(row.repeat, row.status, row.exit_code) for row in rows] == [(0, "interrupted", 143)]
    assert len(backend.calls) == 1


def test_a_resumed_cell_replaces_its_earlier_row(store, tmp_path):
    earlier = failed_record("run1", cell(), "sha256:abc", "interrupted", now(), "SIGINT")
    store.record_cell(earlier)
    key = (cell().config_hash, 0)
    execution(ScriptedBackend(ok_run), store, tmp_path, replace=frozenset({key})).run([cell()])
    rows = store.cell_rows("run1")
    assert [(row.repeat, row.status) for row in rows] == [(0, "ok")]


def test_packed_cells_really_run_at_the_same_time(store, tmp_path):
    both = threading.Barrier(2, timeout=20)
    seen: list[str] = []

    def meets_the_other(task):
        seen.append(task.placement.cpuset)
        both.wait()  # raises BrokenBarrierError if the cells ran one after the other
        return ok_run(task)

    run = execution(ScriptedBackend(meets_the_other, meets_the_other), store, tmp_path, pack=True)
    run.run([cell(), cell(repeat=1)])
    assert sorted(seen) == ["0", "1"]
    assert run.statuses == {"ok": 2}
    assert all("packed: ran beside other cells on CPUs" in row.notes[0] for row in store.cell_rows("run1"))


def test_a_cells_data_provenance_is_stored_from_its_result(store, tmp_path):
    generated = {"kind": "generated", "seed": 0, "n": 60000, "n_test": 10000}

    def generated_run(task):
        task.cell_dir.mkdir(parents=True, exist_ok=True)
        write_result(replace(RESULT, data_provenance=generated), task.cell_dir / "result.json")
        return CellRun(exit_code=0, timed_out=False, oom_killed=False, logs="done")

    execution(ScriptedBackend(generated_run), store, tmp_path).run([cell()])
    assert [row.data_provenance for row in store.cell_rows("run1")] == [generated]


def test_in_a_log_each_cell_says_when_it_starts_and_ends(store, tmp_path):
    run = execution(ScriptedBackend(ok_run), store, tmp_path)
    run.run([cell()])
    lines = run.console.file.getvalue().splitlines()
    label = cell().label
    started = next(i for i, line in enumerate(lines) if line.endswith(f"cell {label}: started"))
    assert re.search(rf"cell {re.escape(label)}: done in \d+\.\d s$", lines[started + 1])


def test_a_stored_cell_carries_the_cells_identity():
    planned = cell(system="box", framework="jax", version="0.10.2", variant="cpu", image="benchmatrix/jax:x",
                   workload="w", model="cnn", dataset="cifar10", batch_size=8, epochs=3, repeat=2,
                   options=(("precision", "bf16"),))  # fmt: skip
    record = failed_record("run1", planned, "sha256:abc", "error", now(), "no runtime")
    assert (record.run_id, record.config_hash, record.image_id, record.config) == (
        "run1", planned.config_hash, "sha256:abc", planned.to_dict()
    )  # fmt: skip
    assert (record.system, record.framework, record.version, record.variant, record.image) == (
        "box", "jax", "0.10.2", "cpu", "benchmatrix/jax:x"
    )  # fmt: skip
    assert (record.workload, record.model, record.dataset, record.batch_size, record.epochs, record.repeat) == (
        "w", "cnn", "cifar10", 8, 3, 2
    )  # fmt: skip
    assert record.options == {"precision": "bf16"}


def test_a_cell_is_stored_with_the_host_its_backend_says_ran_it(store, tmp_path):
    node = {"hostname": "node7", "slurm_node": "node7", "slurm_job_id": "42", "gpus": []}

    def on_node7(task: CellTask) -> CellRun:
        return replace(ok_run(task), host=node)

    execution(ScriptedBackend(on_node7), store, tmp_path).run([cell()])
    assert [row.host for row in store.cell_rows("run1")] == [node]
