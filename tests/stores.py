"""Store rows for tests: a run and a cell with placeholder facts, so each test states only what it
is about (the run id, a reference framework, a status, the metrics)."""

from __future__ import annotations

from typing import Any

from bench import cells
from orchestrator.store.database import Store
from orchestrator.store.rows import RunRow

T0 = cells.T0
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
CELL = cells.record()


def add_run(store: Store, run_id: str = "run1", **fields: Any) -> Store:
    """Create run `run_id` in `store` with placeholder facts, `fields` overriding them."""
    store.create_run(run_id, **{**RUN_FIELDS, **fields})
    return store


cell = cells.record  # a cell record with placeholder facts, keyword fields overriding them
row = cells.row  # a stored cell as `Store.cell_rows` reads it back, keyword fields overriding placeholders
