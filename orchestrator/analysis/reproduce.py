"""`reproduce CELL`: is this stored number still true? Run one stored cell again, exactly.

Exactly means: the same image id (refused when that image is gone or its tag now names another
image: a rebuild is another build), the same cell configuration (the stored config must rebuild the
stored config hash: workload, model, data, batch, epochs, options, limits, timeout), and the same data
(the data folder's provenance now must be the stored one). What cannot be the same, the host, is
listed field by field beside the new figure and the stored repeats' noise.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import docker
import docker.errors
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import func, select

from orchestrator import __version__
from orchestrator.analysis.stats import Summary, summarize
from orchestrator.backends import hostinfo
from orchestrator.backends.local import LocalBackend, host_resources
from orchestrator.errors import NotReproducible, UsageError
from orchestrator.metrics import DISTURBED, SPEED
from orchestrator.run.execute import Execution
from orchestrator.run.interrupts import interrupt_guard
from orchestrator.run.plan import Cell
from orchestrator.run.plugins import folder_digest
from orchestrator.run.runner import new_run_id
from orchestrator.run.scheduler import Allocator
from orchestrator.status import CellStatus
from orchestrator.store.database import Store, cells
from orchestrator.store.rows import CellRow, RunRow
from workloads.datasets import provenance, synthetic
from workloads.datasets import spec as dataset_spec

HOST_FIELDS = ("hostname", "cpu_model", "cores", "memory_bytes", "os", "kernel", "docker_version", "gpus", "driver")


@dataclass(frozen=True)
class StoredCell:
    """The cell to reproduce, the run it came from, and its repeats there (the stored noise)."""

    row: CellRow
    cell: Cell
    run: RunRow
    repeats: list[CellRow]


def load(store: Store, text: str) -> StoredCell:
    """The stored cell `text` (its id, as `results --format csv` lists it); an unknown id is bad input."""
    if not text.isdigit():
        raise UsageError(
            f"reproduce {text}: expected a cell id (a number, the `cell_id` column of `results --format csv`)"
        )
    with store.engine.connect() as conn:
        run_id = conn.execute(select(cells.c.run_id).where(cells.c.id == int(text))).scalar()
        newest = conn.execute(select(func.max(cells.c.id))).scalar()
    if run_id is None:
        held = f"cell ids 1 to {newest}" if newest else "no cells"
        raise UsageError(f"reproduce {text}: no cell {text} in the store {store.where}; it holds {held}")
    rows = store.cell_rows(run_id)
    row = next(r for r in rows if r.id == int(text))
    repeats = [r for r in rows if r.config_hash == row.config_hash]
    return StoredCell(row, rebuilt_cell(row), store.run_row(run_id), repeats)


def rebuilt_cell(row: CellRow) -> Cell:
    """The plan's Cell from the stored config, checked against the stored config hash."""
    config = row.config or {}
    names = {f.name for f in dataclasses.fields(Cell)}
    values = {key: value for key, value in config.items() if key in names}
    values["options"] = tuple((key, value) for key, value in values.get("options") or ())
    values["plugins"] = tuple(values.get("plugins") or ())
    values["plugin_digests"] = tuple(values.get("plugin_digests") or ())
    if values.get("device_ids") is not None:
        values["device_ids"] = tuple(values["device_ids"])
    try:
        cell = Cell(**values)
    except TypeError as exc:
        raise NotReproducible(f"cell {row.id}: its stored configuration is incomplete ({exc})") from exc
    if cell.config_hash != row.config_hash:
        raise NotReproducible(
            f"cell {row.id}: its stored configuration rebuilds config hash {cell.config_hash}, not the stored "
            f"{row.config_hash} (stored by another version of benchmatrix): it cannot be run as it was"
        )
    for folder, digest in zip(cell.plugins, cell.plugin_digests):
        if not Path(folder).is_dir() or folder_digest(Path(folder)) != digest:
            raise NotReproducible(
                f"cell {row.id}: its plugin folder {folder} is gone or its files changed since (sha256 {digest})"
            )
    return cell


def check_image(client: docker.DockerClient, row: CellRow) -> str:
    """The stored image id, still here and still what the cell's tag names; else why not."""
    stored, tag = row.image_id, row.image
    if not stored:
        raise NotReproducible(f"cell {row.id} never had an image (its image did not build: {row.status})")
    try:
        current: Optional[str] = client.images.get(tag).id
    except docker.errors.ImageNotFound:
        current = None
    now_names = f"the tag {tag} now names {current}" if current else f"no image is tagged {tag} any more"
    try:
        client.images.get(stored)
    except docker.errors.ImageNotFound:
        raise NotReproducible(f"cell {row.id}: its image {stored} is gone ({now_names})") from None
    if current != stored:
        raise NotReproducible(
            f"cell {row.id}: {now_names}, not the stored image {stored}: the cell's tag was rebuilt or retagged "
            "since, so the catalog no longer describes that image"
        )
    return stored


def data_now(cell: Cell, data_dir: Path) -> dict:
    """The data provenance a cell would report now, computed as the cell computes it."""
    dataset = dataset_spec(cell.dataset)
    if not dataset.needs_files:
        return synthetic.provenance(cell.dataset, cell.generated_samples).to_dict()
    return provenance.read(dataset.reader, data_dir / cell.dataset).to_dict()


def check_data(stored: StoredCell, data_dir: Path) -> None:
    """Refuse when the data the cell would read is not what it read then."""
    before, now = stored.row.data_provenance, data_now(stored.cell, data_dir)
    if before is None:
        raise NotReproducible(
            f"cell {stored.row.id} stored no data provenance (it did not end ok): nothing to match"
        )
    if before != now:
        keys = sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))
        raise NotReproducible(
            f"cell {stored.row.id}: the data under {data_dir / stored.cell.dataset} is not what it read then "
            f"({', '.join(keys)} differ: stored {json.dumps({k: before.get(k) for k in keys})}, "
            f"now {json.dumps({k: now.get(k) for k in keys})}); pass the --data-dir it ran with"
        )


def host_facts(host: dict) -> dict[str, str]:
    """The host record as comparable text, GPUs and their driver as fields of their own."""
    gpus = host.get("gpus") or []
    facts = {key: str(host.get(key, "?")) for key in HOST_FIELDS if key not in ("gpus", "driver")}
    facts["gpus"] = (
        ", ".join(f"{g.get('name', '?')} ({g.get('memory_bytes', 0) / 2**30:.0f} GiB)" for g in gpus) or "none"
    )
    facts["driver"] = str(gpus[0].get("driver", "?")) if gpus else "none"
    return facts


def recorded_host(stored: StoredCell) -> dict:
    """The machine that ran the stored cell: its own record (a Slurm cell's node), else its run's (before schema 5)."""
    return stored.row.host or json.loads(stored.run.host or "{}")


def host_differences(before: dict, now: dict) -> list[tuple[str, str, str, bool]]:
    """Every host field: stored, now, and whether it is the same."""
    old, new = host_facts(before), host_facts(now)
    return [(key, old[key], new[key], old[key] == new[key]) for key in HOST_FIELDS]


@dataclass(frozen=True)
class Reproduction:
    run_id: str
    stored: Optional[Summary]
    new: Optional[Summary]
    statuses: list[str]
    hosts: list[tuple[str, str, str, bool]]

    @property
    def verdict(self) -> str:
        """Where the new figure lies against the stored repeats' spread."""
        if self.stored is None or self.new is None:
            return "no figure to compare (a side has no ok repeat)"
        change = self.new.median / self.stored.median - 1
        if self.stored.n < 2:
            return f"{change:+.1%} against the one stored repeat (no stored noise to place it in)"
        where = "inside" if self.stored.low <= self.new.median <= self.stored.high else "outside"
        noise = f"stored CV {self.stored.cv:.1%}"
        return f"{change:+.1%} against the stored median, {where} the stored repeats' range ({noise})"


def values(rows: list[CellRow], metric: str = SPEED) -> list[float]:
    """The ok, undisturbed repeats' values: a repeat with other work beside it says nothing of the cell
    (`compare` leaves it out the same way)."""
    return [
        row.metrics[metric]
        for row in rows
        if row.status == CellStatus.OK and metric in row.metrics and not row.metrics.get(DISTURBED)
    ]


def run(
    store: Store,
    stored: StoredCell,
    image_id: str,
    client: docker.DockerClient,
    data_dir: Path,
    results_dir: Path,
    repeats: int,
    console: Console,
) -> Reproduction:
    """Run the cell `repeats` times as a new run of its own, in the stored image."""
    cell = stored.cell
    run_id = new_run_id()
    host = hostinfo.host_info(client)
    store.create_run(
        run_id,
        spec_name=f"reproduce-{stored.row.id}",
        spec_path=stored.run.spec_path,
        spec_hash=stored.run.spec_hash,
        reference=cell.framework,
        system=cell.system,
        command=json.dumps(sys.argv),
        tool_version=__version__,
        host=json.dumps(host),
    )
    todo = [dataclasses.replace(cell, repeat=index) for index in range(repeats)]
    with interrupt_guard() as guard, Progress(console=console, transient=True) as progress:
        guard.deferred = True
        execution = Execution(
            backend=LocalBackend(client, data_dir.resolve()),
            store=store,
            run_id=run_id,
            run_dir=results_dir / "runs" / run_id,
            images={cell.image: image_id},
            allocator=Allocator(host_resources(todo)),
            guard=guard,
            console=console,
            progress=progress,
        )
        try:
            execution.run(todo)
        finally:
            store.finish_run(run_id, "interrupted" if guard.requested else "finished")
    rows = store.cell_rows(run_id)
    return Reproduction(
        run_id,
        summarize(values(stored.repeats)),
        summarize(values(rows)),
        [row.status for row in rows],
        host_differences(recorded_host(stored), host),
    )
