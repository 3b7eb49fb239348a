"""Run a list of cells through a backend and store each as it ends — the part that must survive faults.

Cells start in plan order as the scheduler finds room (one at a time unless packed), each in a
worker thread, so the main thread stays free for signals and is the only one writing to the store
and the console. A cell whose backend lost contact (the engine restarted) is stored `retryable`
and run once more; an interrupt stops the running cells and stores them `interrupted`.
"""

from __future__ import annotations

import contextlib
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.progress import Progress

from orchestrator.backends import (
    LOG_FILE,
    LOG_TAIL_CHARS,
    RESULT_FILE,
    Backend,
    BackendError,
    BackendLost,
    CellRun,
    CellTask,
)
from orchestrator.clock import now
from orchestrator.errors import BenchmatrixError, EngineLostTwice
from orchestrator.metrics import DISTURBED, SPEED
from orchestrator.progress import step
from orchestrator.run.interrupts import InterruptGuard
from orchestrator.run.plan import Cell
from orchestrator.run.result import classify, metrics_from, signal_note
from orchestrator.run.scheduler import Allocator, Placement
from orchestrator.status import CellStatus
from orchestrator.store.database import CellRecord, Store
from workloads.result import Document, ResultError, read_result

POLL_S = 0.5


@dataclass(frozen=True)
class InFlight:
    """A cell handed to a worker: where it runs, since when, and which attempt (2 = the retry)."""

    cell: Cell
    placement: Placement
    started: datetime
    attempt: int


@dataclass
class Execution:
    backend: Backend
    store: Store
    run_id: str
    run_dir: Path
    images: dict[str, str]
    allocator: Allocator
    guard: InterruptGuard
    console: Console
    progress: Progress
    timeout_override: Optional[float] = None
    replace: frozenset = frozenset()  # (config_hash, repeat) already stored: a resumed cell replaces its row

    def __post_init__(self) -> None:
        self.statuses: Counter = Counter()
        self.failure: Optional[BenchmatrixError] = None
        self._cancelled = False

    def run(self, cells: list[Cell]) -> None:
        pending = deque((cell, 1) for cell in cells)
        running: dict[Future, InFlight] = {}
        task = self.progress.add_task("cells", total=len(cells))
        with ThreadPoolExecutor(max_workers=max(1, len(cells)), thread_name_prefix="cell") as pool:
            try:
                while pending or running:
                    if self.guard.requested and not self._cancelled:
                        self._cancel(f"{self.guard.requested}: stopping {len(running)} running cell(s)")
                    if self._cancelled:
                        pending.clear()
                    while pending and not self._cancelled:
                        placement = self.allocator.place(pending[0][0])
                        if placement is None:
                            break
                        cell, attempt = pending.popleft()
                        self.progress.update(task, description=cell.label)
                        flight = InFlight(cell, placement, now(), attempt)
                        running[pool.submit(self._run_cell, self._task(cell, placement))] = flight
                    done, _ = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
                    for future in done:
                        flight = running.pop(future)
                        self.allocator.release(flight.placement)
                        if self._finish(future, flight, pending):
                            self.progress.advance(task)
            except BaseException:
                self._cancel("stopping the running cells")
                raise
        if self.failure is not None:
            raise self.failure

    def _run_cell(self, task: CellTask) -> CellRun:
        """On the cell's thread: the backend's run, its start and end in a log."""
        with step(f"cell {task.cell.label}", self.console):
            return self.backend.run_cell(task)

    def _task(self, cell: Cell, placement: Placement) -> CellTask:
        return CellTask(
            run_id=self.run_id,
            cell=cell,
            image_id=self.images[cell.image],
            cell_dir=self.run_dir / cell_dir_name(cell),
            placement=placement,
            timeout_s=self.timeout_override or cell.timeout_s,
        )

    def _finish(self, future: Future, flight: InFlight, pending: deque) -> bool:
        """Store the cell's outcome; False when it goes back to the queue for its one retry."""
        cell = flight.cell
        try:
            ended = future.result()
        except BackendLost as exc:
            retry = flight.attempt == 1 and not self._cancelled
            note = f"retryable: {exc}" + ("; retrying once" if retry else "")
            self.fail(cell, flight.started, CellStatus.RETRYABLE, note)
            if retry:
                pending.appendleft((cell, 2))
                return False
            if not self._cancelled:
                self.failure = EngineLostTwice(f"{exc} (again, on the retry); the run stops here")
                self._cancel("the backend is gone")
            return True
        except BackendError as exc:  # e.g. no GPU runtime for a device request
            self.fail(cell, flight.started, CellStatus.ERROR, str(exc))
            return True
        task = self._task(cell, flight.placement)
        notes = self._notes(task, flight.placement, flight.attempt)
        self._store(cell_record(task, ended, flight.started, notes), cell.label)
        return True

    def fail(self, cell: Cell, started: datetime, status: CellStatus, why: str) -> None:
        """Store a cell that has no outcome of its own (its image failed, its backend was lost)."""
        image_id = self.images.get(cell.image)
        self._store(failed_record(self.run_id, cell, image_id, status, started, why), cell.label)

    def _notes(self, task: CellTask, placement: Placement, attempt: int) -> list[str]:
        notes = []
        if attempt > 1:
            notes.append("retried once: the first attempt lost the backend (stored retryable, now replaced)")
        if task.timeout_s != task.cell.timeout_s:
            notes.append(f"timeout {task.timeout_s:g} s (--timeout; the spec says {task.cell.timeout_s} s)")
        if self.allocator.pack:
            where = [f"GPUs {','.join(map(str, placement.device_ids))}"] if placement.device_ids else []
            where += [f"CPUs {placement.cpuset}"] if placement.cpuset else []
            notes.append("packed: ran beside other cells on " + " and ".join(where))
        return notes

    def _store(self, record: CellRecord, label: str) -> None:
        """Write the row (replacing an earlier attempt's) and say how the cell ended."""
        key = (record.config_hash, record.repeat)
        if key in self.replace:
            self.store.replace_cell(record)
        else:
            self.store.record_cell(record)
            self.replace |= {key}
        if record.status != CellStatus.RETRYABLE:
            self.statuses[record.status] += 1
        colour = "green" if record.status == CellStatus.OK else "red"
        speed = next((m.value for m in record.metrics if m.name == SPEED), None)
        disturbed = any(m.name == DISTURBED and m.value for m in record.metrics)
        self.console.print(
            f"[{colour}]{record.status:>11}[/] {label}"
            + (f"  {speed:,.0f} img/s" if speed else "")
            + ("  [yellow]disturbed[/] (see its notes)" if disturbed else "")
        )

    def _cancel(self, why: str) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        with contextlib.suppress(OSError):  # a closed stdout (a dead pipe) must not cut the clean-up short
            self.console.print(f"[yellow]{why}[/] (grace period, then kill)", highlight=False)
        self.backend.cancel()


def cell_dir_name(cell: Cell) -> str:
    build = f"{cell.framework}_{cell.version}-{cell.variant}"
    return f"{cell.system}_{build}_{cell.workload}_bs{cell.batch_size}_{cell.config_hash}_r{cell.repeat}"


# The cell's identity as the store keeps it: the fields a Cell and a CellRecord both name (system,
# framework, version, variant, workload, model, dataset, batch size, epochs, image, repeat, options).
_STORED_CELL_FIELDS = tuple(f.name for f in fields(Cell) if f.name in {r.name for r in fields(CellRecord)})


def _identity(run_id: str, cell: Cell, image_id: Optional[str]) -> dict:
    stored = {name: getattr(cell, name) for name in _STORED_CELL_FIELDS}
    return dict(
        stored,
        options=dict(cell.options),
        run_id=run_id,
        config_hash=cell.config_hash,
        config=cell.to_dict(),
        image_id=image_id,
    )


def failed_record(
    run_id: str, cell: Cell, image_id: Optional[str], status: CellStatus, started: datetime, why: str
) -> CellRecord:
    """A cell that never produced an outcome of its own (image failed, engine lost, runtime missing)."""
    return CellRecord(
        **_identity(run_id, cell, image_id),
        status=status,
        exit_code=None,
        started_at=started,
        finished_at=now(),
        log_path=None,
        result_path=None,
        versions={},
        notes=[why.splitlines()[0] if why else status],
        log_tail=why[-LOG_TAIL_CHARS:],
        metrics=[],
    )


def cell_record(task: CellTask, ended: CellRun, started: datetime, notes: list[str]) -> CellRecord:
    """Status from how the cell ended, values from its result file and the backend's monitoring."""
    result_path = task.cell_dir / RESULT_FILE
    notes = list(notes) + list(ended.notes)
    try:
        result: Optional[Document] = read_result(result_path) if ended.exit_code == 0 else None
    except ResultError as exc:
        result, notes = None, notes + [str(exc)]
    if ended.interrupted:
        status = CellStatus.INTERRUPTED
    else:
        status = classify(ended.exit_code, ended.timed_out, ended.oom_killed, ended.logs, result is not None)
    ended_by = signal_note(ended.exit_code) if status in (CellStatus.ERROR, CellStatus.OOM) else None
    if ended_by:
        notes.append(ended_by)
    if result is not None:
        notes += [result.warmup.note, *result.notes]  # a sample cap among them
    # Values only from cells that ended ok; a failed cell's monitoring series stay in its files.
    measured = metrics_from(result) + list(ended.metrics) if result and status == CellStatus.OK else []
    return CellRecord(
        **_identity(task.run_id, task.cell, task.image_id),
        status=status,
        exit_code=ended.exit_code,
        started_at=started,
        finished_at=now(),
        log_path=str(task.cell_dir / LOG_FILE),
        result_path=str(result_path) if result else None,
        versions=result.versions if result else {},
        notes=notes,
        log_tail=None if status == CellStatus.OK else ended.logs[-LOG_TAIL_CHARS:],
        metrics=measured,
        data_provenance=result.data_provenance if result else None,
        host=ended.host,
    )
