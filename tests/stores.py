"""Store rows for tests: a run and a cell with placeholder facts, so each test states only what it
is about (the run id, a reference framework, a status, the metrics)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from orchestrator.status import CellStatus
from orchestrator.store.database import CellRecord, Store
from orchestrator.store.rows import CellRow, RunRow

T0 = datetime(2026, 11, 22, tzinfo=UTC)
RUN_FIELDS = {
    "spec_name": "t",
    "spec_path": "t.yaml",
    "spec_hash": "h",
    "reference": "tensorflow",
    "system": "cpu",
    "command": "[]",
    "tool_version": "0",
    "host": "{}",
}
RUN = RunRow(id="run1", started_at=T0, finished_at=None, status="running", **RUN_FIELDS)  # as `Store.run_row` reads it
CELL = CellRecord(
    run_id="run1",
    config_hash="cfg",
    repeat=0,
    system="cpu",
    framework="mxnet",
    version="1",
    variant="cpu",
    workload="mlp",
    model="mlp",
    dataset="fashion_mnist",
    batch_size=32,
    epochs=1,
    options={},
    config={},
    image="benchmatrix/mxnet:1-cpu",
    image_id="sha256:x",
    status="ok",
    exit_code=0,
    started_at=T0,
    finished_at=T0,
    log_path=None,
    result_path=None,
    versions={},
    notes=[],
    log_tail=None,
    metrics=[],
)


def add_run(store: Store, run_id: str = "run1", **fields: Any) -> Store:
    """Create run `run_id` in `store` with placeholder facts, `fields` overriding them."""
    store.create_run(run_id, **{**RUN_FIELDS, **fields})
    return store


def cell(**fields: Any) -> CellRecord:
    """A cell record with placeholder facts, `fields` overriding them."""
    return replace(CELL, **fields)


def row(**fields: Any) -> CellRow:
    """A stored cell as the store reads it back (`Store.cell_rows`), `fields` overriding placeholders."""
    record = {name: getattr(CELL, name) for name in CellRow.__dataclass_fields__ if hasattr(CELL, name)}
    values: dict[str, Any] = {**record, "id": 1, "metrics": {}, "data_provenance": None, **fields}
    return CellRow(**{**values, "status": CellStatus(values["status"])})
