"""Run a matrix: plan → images → scheduler → backend per cell → store. Each cell is stored as it ends.

`--resume RUN_ID|last` appends to an earlier run: cells already stored with a final status and
the same identity (config hash + image id + repeat) are skipped, the rest run and replace their
earlier row (an interrupted or retryable one), so no cell is ever stored twice.
"""

from __future__ import annotations

import functools
import json
import secrets
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import docker
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from orchestrator import __version__
from orchestrator.backends import Backend, BackendName, hostinfo
from orchestrator.backends.discovery import ContainerDiscoverer
from orchestrator.backends.engine import connect, owner_alive, owner_id
from orchestrator.backends.interference import DISTURBING_OTHER_CPUS
from orchestrator.backends.registry import BackendSetup, backend_kind
from orchestrator.backends.slurm import SlurmOptions
from orchestrator.clock import now
from orchestrator.errors import BenchmatrixError, HostBusy, Interrupted, UsageError
from orchestrator.images.build import BuildOptions, ensure_image
from orchestrator.images.cuda import unsupported_gpus
from orchestrator.run import data
from orchestrator.run.execute import Execution
from orchestrator.run.interrupts import InterruptGuard, interrupt_guard
from orchestrator.run.plan import Cell, Filters, plan
from orchestrator.run.scheduler import DEFAULT_CPUS_PER_CELL, Allocator
from orchestrator.spec.catalog import Catalog, ImageSpec, load_catalog
from orchestrator.spec.matrix import Spec, load_spec, spec_hash
from orchestrator.status import FINAL_STATUSES, CellStatus
from orchestrator.store.database import Store
from orchestrator.store.rows import CellRow, RunRow

# The key of a run's `host` record naming the orchestrator process (host/pid/start time) that runs it.
OWNER_KEY = "orchestrator"


@dataclass(frozen=True)
class RunRequest:
    spec_path: Path
    filters: Filters  # system None: the resumed run's, else cpu
    repeats: Optional[int]
    store: str
    data_dir: Path
    results_dir: Path
    build: BuildOptions = field(default_factory=BuildOptions)
    resume: Optional[str] = None
    timeout_s: Optional[float] = None
    pack: bool = False
    cpus_per_cell: int = DEFAULT_CPUS_PER_CELL
    sample_hz: float = 1.0
    backend: BackendName = BackendName.LOCAL  # orchestrator/backends/registry.py
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    strict_environment: bool = False  # a busy host refuses the run instead of a warning


@dataclass
class RunSummary:
    run_id: str
    statuses: Counter

    @property
    def all_ok(self) -> bool:
        return set(self.statuses) <= {CellStatus.OK}


@dataclass(frozen=True)
class Prepared:
    spec: Spec
    catalog: Catalog
    cells: list[Cell]
    allocator: Allocator
    setup: BackendSetup
    notes: tuple[str, ...] = ()  # said before the first cell (CUDA limits left to the nodes)


def new_run_id() -> str:
    return now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def prepare(request: RunRequest, console: Optional[Console] = None) -> Prepared:
    """Everything that can be checked before anything starts (an engine only to learn new plugins' models,
    building a framework's image for it when none is here; `console` gets those steps' lines)."""
    if request.timeout_s is not None and request.timeout_s <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {request.timeout_s:g}")
    if request.sample_hz < 0 or request.sample_hz > 100:
        raise UsageError(f"--sample-hz must be in [0, 100] (0: no monitoring), got {request.sample_hz:g}")
    spec = load_spec(request.spec_path)
    catalog = load_catalog()
    discover = building_discoverer(request.spec_path, catalog, request.build, console)
    cells = plan(spec, request.spec_path, catalog, request.filters, request.repeats, discover)
    if not cells:
        raise UsageError(f"{request.spec_path}: the filters select no cells")
    unbuildable = {c.image: e.unbuildable for c in cells for e in catalog.images if e.tag == c.image and e.unbuildable}
    if unbuildable:
        raise UsageError(
            "these images cannot be built here: "
            + "; ".join(f"{tag}: {' '.join(reason.split())}" for tag, reason in unbuildable.items())
        )
    kind = backend_kind(request.backend)
    limited = {c.image: e for c in cells for e in catalog.images if e.tag == c.image and e.cuda and c.gpus}
    notes: tuple[str, ...] = ()
    if limited and kind.on_this_host:
        problems = unsupported_images(limited.values(), hostinfo.gpus())
        if problems:
            raise UsageError("these GPU images cannot run on this host's GPUs: " + "; ".join(problems))
    elif limited:
        notes = (
            f"the {kind.name} backend's machines are known only as each cell starts: the CUDA limits of "
            f"{', '.join(sorted(limited))} are checked there, against that machine's GPUs",
        )
    setup = BackendSetup(
        data_dir=request.data_dir,
        sample_hz=request.sample_hz,
        pack=request.pack,
        cpus_per_cell=request.cpus_per_cell,
        slurm=request.slurm.for_system(spec.systems[cells[0].system].slurm),
    )
    allocator = kind.allocator(cells, setup)
    allocator.check(cells)
    for dataset in sorted({cell.dataset for cell in cells}):
        data.require(dataset, request.data_dir / dataset)
    return Prepared(spec, catalog, cells, allocator, setup, notes)


def building_discoverer(
    spec_path: Path, catalog: Catalog, options: BuildOptions, console: Optional[Console]
) -> ContainerDiscoverer:
    """The plugin discoverer of `run` and `regress`: with no image of a framework here it builds one
    (not those the catalog marks unbuildable; the next one when a build fails), its steps on `console`."""
    return ContainerDiscoverer(
        spec_path,
        build=functools.partial(build_image, catalog, options, console),
        unbuildable=[entry.tag for entry in catalog.images if entry.unbuildable],
        console=console,
    )


def build_image(
    catalog: Catalog, options: BuildOptions, console: Optional[Console], client: docker.DockerClient, tag: str
) -> None:
    """Plugin discovery runs in a framework's image: `run` builds one the plan needs when none is here
    (a spinner with the build's last line on a terminal, start/end lines in a log)."""
    entry = next(entry for entry in catalog.images if entry.tag == tag)
    if console is None:
        ensure_image(client, catalog, entry, options)
        return
    with console.status(f"image {tag} (to learn the plugins' models)") as status:
        ensure_image(
            client, catalog, entry, options, on_line=lambda line: status.update(f"{tag}: {line[:70]}"), console=console
        )


def busy_host(cells: list[Cell]) -> Optional[str]:
    """What else runs on this host that would disturb the cells (CPU work, processes on its GPUs), or None."""
    busy = hostinfo.host_busy()
    found = [busy.text()] if busy.cpus >= DISTURBING_OTHER_CPUS else []
    if any(cell.gpus for cell in cells):
        found += [f"GPU {index}: {', '.join(users)}" for index, users in hostinfo.gpu_processes().items() if users]
    return "; ".join(found) or None


def _check_environment(cells: list[Cell], strict: bool, console: Console) -> None:
    """One line before the first cell when the host is busy; with --strict-environment, no run at all."""
    busy = busy_host(cells)
    if busy is None:
        return
    if strict:
        raise HostBusy(f"the host is busy: {busy}; nothing started (run without --strict-environment to go on)")
    console.print(
        f"[yellow]warning: the host is busy[/] — {escape(busy)}; cells it overlaps are flagged disturbed "
        "(`doctor` says more)",
        highlight=False,
        soft_wrap=True,
    )


def unsupported_images(entries: Iterable[ImageSpec], gpus: list[dict]) -> list[str]:
    """Each catalog entry whose CUDA build cannot run on one of the host's GPUs, with why."""
    checked = ((entry, unsupported_gpus(entry.cuda, gpus)) for entry in entries if entry.cuda)
    return [f"{entry.tag}: {', '.join(found)}" for entry, found in checked if found]


def run_matrix(request: RunRequest, console: Console) -> RunSummary:
    resumed = _resumed_run(request) if request.resume else None
    system = request.filters.system or (resumed.system if resumed else "cpu")
    request = replace(request, filters=replace(request.filters, system=system))
    prepared = prepare(request, console)
    kind = backend_kind(request.backend)
    if kind.on_this_host:
        _check_environment(prepared.cells, request.strict_environment, console)
    for note in prepared.notes:
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    client = connect()
    store = Store(request.store)
    on_pending = functools.partial(console.print, style="yellow", markup=False, highlight=False)
    backend = kind.create(client, replace(prepared.setup, on_pending=on_pending))
    _reap_orphans(backend, store, console)
    if resumed:
        run_id = resumed.id
        host = json.dumps({**json.loads(resumed.host or "{}"), OWNER_KEY: owner_id()})
        if not store.reopen_run(run_id, host, seen_host=resumed.host):
            _refuse_if_alive(store.run_row(run_id))
            raise UsageError(f"--resume {run_id}: another orchestrator resumed that run just now")
        first = " ".join(["python -m orchestrator", *json.loads(resumed.command)[1:]])
        console.print(f"resuming run [bold]{run_id}[/] (first started as: {escape(first)})", highlight=False)
    else:
        run_id = new_run_id()
        store.create_run(
            run_id,
            spec_name=prepared.spec.name,
            spec_path=str(request.spec_path),
            spec_hash=spec_hash(request.spec_path),
            reference=prepared.spec.reference,
            system=system,
            command=json.dumps(sys.argv),
            tool_version=__version__,
            host=json.dumps({**kind.run_host(client), OWNER_KEY: owner_id()}),
        )
    console.print(f"run [bold]{run_id}[/] — {len(prepared.cells)} cells, store {request.store}")
    with interrupt_guard() as guard:
        try:
            images = _ensure_images(client, prepared.catalog, prepared.cells, request.build, console)
            guard.deferred = True
            execution = _execute(request, prepared, backend, store, run_id, images, guard, console)
        except KeyboardInterrupt as exc:
            store.finish_run(run_id, "interrupted")
            raise Interrupted(f"run {run_id} interrupted; resume with `run --resume {run_id}`") from exc
        except BaseException:  # a lost backend, an unexpected failure: the run stops, resumable
            store.finish_run(run_id, "interrupted")
            raise
    if guard.requested:
        store.finish_run(run_id, "interrupted")
        raise Interrupted(
            f"run {run_id} interrupted by {guard.requested}; finished cells are stored, "
            f"`run --resume {run_id}` runs the rest"
        )
    store.finish_run(run_id, "finished")
    return RunSummary(run_id, execution.statuses)


def finished(row: CellRow, image: str | BenchmatrixError) -> bool:
    """`run --resume` leaves a stored cell alone when it ended (ok, oom, timeout, error) in the image the
    run uses now; an interrupted or retryable one, or one of an image since rebuilt, runs again."""
    return row.status in FINAL_STATUSES and row.image_id == image


def _execute(
    request: RunRequest,
    prepared: Prepared,
    backend: Backend,
    store: Store,
    run_id: str,
    images: dict[str, str | BenchmatrixError],
    guard: InterruptGuard,
    console: Console,
) -> Execution:
    """Run the cells not yet stored with a final status; a failed image's cells are stored as errors."""
    stored = {(row.config_hash, row.repeat): row for row in store.cell_rows(run_id)}
    built = {tag: image for tag, image in images.items() if isinstance(image, str)}
    with _progress(console) as progress:
        execution = Execution(
            backend=backend,
            store=store,
            run_id=run_id,
            run_dir=request.results_dir / "runs" / run_id,
            images=built,
            allocator=prepared.allocator,
            guard=guard,
            console=console,
            progress=progress,
            timeout_override=request.timeout_s,
            replace=frozenset(stored),
        )
        todo = []
        for cell in prepared.cells:
            row = stored.get((cell.config_hash, cell.repeat))
            image = images[cell.image]
            if row and finished(row, image):
                execution.statuses[row.status] += 1
            elif isinstance(image, BenchmatrixError):
                execution.fail(cell, now(), CellStatus.ERROR, f"image build failed: {image}")
            else:
                todo.append(cell)
        if len(todo) < len(prepared.cells):
            done = len(prepared.cells) - len(todo)
            console.print(f"already stored: {done} of {len(prepared.cells)} cells; {len(todo)} to run", highlight=False)
        execution.run(todo)
    return execution


def _resumed_run(request: RunRequest) -> RunRow:
    """The stored run to append to; refused when the spec file changed since (its cells would differ)."""
    store = Store(request.store)
    run = store.run_row(store.resolve_run(request.resume))
    if run.spec_hash != spec_hash(request.spec_path):
        raise UsageError(
            f"--resume {run.id}: that run was made from {run.spec_path} (sha256 {run.spec_hash[:12]}), "
            f"and {request.spec_path} is not that file as it was: resume with the same spec"
        )
    if request.filters.system and run.system and request.filters.system != run.system:
        raise UsageError(f"--resume {run.id}: that run is of system {run.system}, not {request.filters.system}")
    _refuse_if_alive(run)
    return run


def _run_owner(run: RunRow) -> Optional[str]:
    """The orchestrator (host/pid/start time) that created or last resumed `run`; None for older runs."""
    return json.loads(run.host or "{}").get(OWNER_KEY)


def _refuse_if_alive(run: RunRow) -> None:
    """Two orchestrators on one run remove each other's containers and store its cells twice: one at a time."""
    owner = _run_owner(run)
    if run.status == "running" and owner and owner_alive(owner):
        raise UsageError(
            f"--resume {run.id}: its orchestrator {owner} (host/pid/start time) is still running it; "
            "wait for it to end (or stop it: Ctrl-C, or kill that pid), then resume"
        )


def _reap_orphans(backend: Backend, store: Store, console: Console) -> None:
    """Containers of orchestrators killed earlier go; their runs, if still 'running' here, become interrupted."""
    known = set(store.run_ids())
    for reaped in backend.reap_orphans():
        console.print(f"[yellow]{escape(reaped.description)}[/]", highlight=False)
        if reaped.run_id in known and store.run_row(reaped.run_id).status == "running":
            store.finish_run(reaped.run_id, "interrupted")


def _show_build_line(progress: Progress, task: TaskID, tag: str, line: str) -> None:
    progress.update(task, description=f"image {tag}: {line[:60]}")


def _ensure_images(
    client: docker.DockerClient, catalog: Catalog, cells: list[Cell], build: BuildOptions, console: Console
) -> dict[str, str | BenchmatrixError]:
    """Image id per tag, or the build error (its cells are then stored as errors, the matrix goes on)."""
    tags = list(dict.fromkeys(cell.image for cell in cells))
    found: dict[str, str | BenchmatrixError] = {}
    with _progress(console) as progress:
        task = progress.add_task("images", total=len(tags))
        for tag in tags:
            entry = next(e for e in catalog.images if e.tag == tag)
            progress.update(task, description=f"image {tag}")
            try:
                found[tag] = ensure_image(
                    client,
                    catalog,
                    entry,
                    build,
                    on_line=functools.partial(_show_build_line, progress, task, tag),
                    console=console,
                )
            except BenchmatrixError as exc:
                console.print(f"[red]image {tag} failed[/]: {escape(str(exc))}", soft_wrap=True)
                found[tag] = exc
            progress.advance(task)
    return found


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
