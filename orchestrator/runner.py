"""Run a matrix: plan → images → backend per cell → store. Each cell is stored as it ends."""

from __future__ import annotations

import json
import secrets
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import docker
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from orchestrator import __version__, data
from orchestrator.backends import RESULT_FILE, Backend
from orchestrator.backends.local import LocalBackend
from orchestrator.catalog import Catalog, load_catalog
from orchestrator.engine import connect
from orchestrator.errors import BenchmatrixError, Interrupted, UsageError
from orchestrator.hostinfo import host_info
from orchestrator.images import BuildOptions, ensure_image
from orchestrator.plan import Cell, Filters, plan
from orchestrator.result import ResultError, classify, load_result, metrics_from
from orchestrator.spec import Spec, load_spec, spec_hash
from orchestrator.store import CellRecord, Store, now

LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class RunRequest:
    spec_path: Path
    filters: Filters
    repeats: Optional[int]
    store: str
    data_dir: Path
    results_dir: Path
    build: BuildOptions = field(default_factory=BuildOptions)


@dataclass
class RunSummary:
    run_id: str
    statuses: Counter

    @property
    def all_ok(self) -> bool:
        return set(self.statuses) <= {"ok"}


def new_run_id() -> str:
    return now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def prepare(request: RunRequest) -> tuple[Spec, Catalog, list[Cell]]:
    """Everything that can be checked without an engine, checked before anything starts."""
    spec = load_spec(request.spec_path)
    catalog = load_catalog()
    cells = plan(spec, request.spec_path, catalog, request.filters, request.repeats)
    if not cells:
        raise UsageError(f"{request.spec_path}: the filters select no cells")
    unbuildable = {c.image: e.unbuildable for c in cells for e in catalog.images if e.tag == c.image and e.unbuildable}
    if unbuildable:
        raise UsageError(
            "these images cannot be built here: "
            + "; ".join(f"{tag}: {' '.join(reason.split())}" for tag, reason in unbuildable.items())
        )
    for dataset in sorted({cell.dataset for cell in cells}):
        data.require(dataset, request.data_dir / dataset)
    return spec, catalog, cells


def run_matrix(request: RunRequest, console: Console) -> RunSummary:
    spec, catalog, cells = prepare(request)
    client = connect()
    store = Store(request.store)
    run_id = new_run_id()
    store.create_run(
        run_id,
        spec_name=spec.name,
        spec_path=str(request.spec_path),
        spec_hash=spec_hash(request.spec_path),
        reference=spec.reference,
        system=request.filters.system,
        command=json.dumps(sys.argv),
        tool_version=__version__,
        host=json.dumps(host_info(client)),
    )
    console.print(f"run [bold]{run_id}[/] — {len(cells)} cells, store {request.store}")
    statuses: Counter = Counter()
    try:
        images = _ensure_images(client, catalog, cells, request.build, console)
        backend = LocalBackend(client, run_id, request.data_dir.resolve())
        _run_cells(backend, store, run_id, cells, images, request.results_dir / "runs" / run_id, statuses, console)
    except KeyboardInterrupt as exc:
        store.finish_run(run_id, "interrupted")
        raise Interrupted(f"run {run_id} interrupted; finished cells are stored") from exc
    store.finish_run(run_id, "finished")
    return RunSummary(run_id, statuses)


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
                    on_line=lambda line, t=tag: progress.update(task, description=f"image {t}: {line[:60]}"),
                )
            except BenchmatrixError as exc:
                console.print(f"[red]image {tag} failed[/]: {escape(str(exc))}", soft_wrap=True)
                found[tag] = exc
            progress.advance(task)
    return found


def _run_cells(
    backend: Backend,
    store: Store,
    run_id: str,
    cells: list[Cell],
    images: dict[str, str | BenchmatrixError],
    run_dir: Path,
    statuses: Counter,
    console: Console,
) -> None:
    with _progress(console) as progress:
        task = progress.add_task("cells", total=len(cells))
        for cell in cells:
            progress.update(task, description=cell.label)
            record = _run_one(backend, run_id, cell, images[cell.image], run_dir / _cell_dir_name(cell))
            store.record_cell(record)
            statuses[record.status] += 1
            colour = "green" if record.status == "ok" else "red"
            speed = next((m.value for m in record.metrics if m.name == "train_img_per_s"), None)
            console.print(f"[{colour}]{record.status:>7}[/] {cell.label}" + (f"  {speed:,.0f} img/s" if speed else ""))
            progress.advance(task)


def _run_one(backend: Backend, run_id: str, cell: Cell, image: str | BenchmatrixError, cell_dir: Path) -> CellRecord:
    started = now()
    common = dict(
        run_id=run_id,
        config_hash=cell.config_hash,
        repeat=cell.repeat,
        system=cell.system,
        framework=cell.framework,
        version=cell.version,
        variant=cell.variant,
        workload=cell.workload,
        model=cell.model,
        dataset=cell.dataset,
        batch_size=cell.batch_size,
        epochs=cell.epochs,
        options=dict(cell.options),
        config=cell.to_dict(),
        image=cell.image,
    )
    if isinstance(image, BenchmatrixError):
        return CellRecord(
            **common,
            image_id=None,
            status="error",
            exit_code=None,
            started_at=started,
            finished_at=now(),
            log_path=None,
            result_path=None,
            versions={},
            notes=["image build failed"],
            log_tail=str(image)[-LOG_TAIL_CHARS:],
            metrics=[],
        )
    ended = backend.run_cell(cell, image, cell_dir)
    result_path = cell_dir / RESULT_FILE
    notes: list[str] = []
    try:
        result: Optional[dict] = load_result(result_path) if ended.exit_code == 0 else None
    except ResultError as exc:
        result, notes = None, [str(exc)]
    status = classify(ended.exit_code, ended.timed_out, ended.oom_killed, ended.logs, result is not None)
    if result is not None:
        notes += [result["warmup"]["note"]] + list(result.get("notes") or [])
        if result.get("max_samples") and result.get("samples_per_epoch") == result["max_samples"]:
            notes.append(f"capped at {result['max_samples']} training samples per epoch")
    return CellRecord(
        **common,
        image_id=image,
        status=status,
        exit_code=ended.exit_code,
        started_at=started,
        finished_at=now(),
        log_path=str(cell_dir / "log.txt"),
        result_path=str(result_path) if result else None,
        versions=(result or {}).get("versions", {}),
        notes=notes,
        log_tail=None if status == "ok" else ended.logs[-LOG_TAIL_CHARS:],
        metrics=metrics_from(result) if result and status == "ok" else [],
    )


def _cell_dir_name(cell: Cell) -> str:
    build = f"{cell.framework}_{cell.version}-{cell.variant}"
    return f"{cell.system}_{build}_{cell.workload}_bs{cell.batch_size}_{cell.config_hash}_r{cell.repeat}"


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
