"""Synthetic cells: one cell with placeholder facts, as the plan makes it and as the store keeps it, so
a benchmark, a simulation or a test states only what it is about (its run, version, workload, status,
metrics). Used by `bench.store_scale`, `scripts/bisect_sim.py` and the tests (`tests/stores.py`)."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from orchestrator.run.plan import Cell
from orchestrator.status import CellStatus
from orchestrator.store.database import CellRecord, Store
from orchestrator.store.rows import CellColumns, CellRow

T0 = datetime(2026, 11, 22, tzinfo=UTC)
RUN_FIELDS = {  # a run's facts, as `Store.create_run` takes them
    "spec_name": "t",
    "spec_path": "t.yaml",
    "spec_hash": "h",
    "reference": "tensorflow",
    "system": "cpu",
    "command": "[]",
    "tool_version": "0",
    "host": "{}",
}
PLAN = Cell(  # the cell as `plan` makes it
    system="cpu",
    system_kind="cpu",
    framework="mxnet",
    version="1",
    variant="cpu",
    image="benchmatrix/mxnet:1-cpu",
    workload="mlp",
    model="mlp",
    dataset="fashion_mnist",
    batch_size=32,
    epochs=1,
    optimizer="adam",
    lr=0.001,
    max_samples=None,
    warmup_steps=10,
    timeout_s=1800,
)
# The same cell as the store keeps it: the identity fields a plan's cell and a store's both name (the
# options as a mapping, as `run.execute` stores them), then what a run adds (placeholders).
_IDENTITY = {
    field.name: getattr(PLAN, field.name) for field in fields(Cell) if field.name in CellColumns.__dataclass_fields__
}
PLACEHOLDER = CellColumns(
    **{**_IDENTITY, "options": dict(PLAN.options)},
    run_id="run1",
    config_hash="cfg",
    config={},
    image_id="sha256:x",
    status=CellStatus.OK,
    exit_code=0,
    started_at=T0,
    finished_at=T0,
    log_path=None,
    result_path=None,
    versions={},
    notes=[],
    log_tail=None,
)


def add_run(store: Store, run_id: str = "run1", **fields_: Any) -> Store:
    """Create run `run_id` in `store` with placeholder facts, `fields_` overriding them."""
    store.create_run(run_id, **{**RUN_FIELDS, **fields_})
    return store


def _columns(**fields_: Any) -> dict[str, Any]:
    placeholders = {field.name: getattr(PLACEHOLDER, field.name) for field in fields(CellColumns)}
    return {**placeholders, **fields_}


def record(**fields_: Any) -> CellRecord:
    """A cell as a run writes it (`Store.record_cells`): placeholders and no metrics, `fields_` overriding."""
    return CellRecord(**_columns(**{"metrics": [], **fields_}))


def row(**fields_: Any) -> CellRow:
    """A cell as the store reads it back (`Store.cell_rows`): placeholders, id 1 and no metrics,
    `fields_` overriding (a status given as text becomes a `CellStatus`)."""
    values = _columns(**{"id": 1, "metrics": {}, "data_provenance": None, **fields_})
    return CellRow(**{**values, "status": CellStatus(values["status"])})


def of_framework(framework: str, workload: str, **fields_: Any) -> CellRecord:
    """A record of `framework`'s version 1 running `workload` (the model of that name): the build's
    image and versions named after the framework, `fields_` overriding."""
    built = {"image": f"benchmatrix/{framework}:1-cpu", "versions": {framework: "1"}}
    return record(**{"framework": framework, "workload": workload, "model": workload, **built, **fields_})
