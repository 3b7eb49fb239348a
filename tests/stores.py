"""Store rows for tests: a run and a cell with placeholder facts (`bench.cells`, which benchmarks and
scripts share), so each test states only what it is about (the run id, a reference framework, a
status, the metrics)."""

from __future__ import annotations

from bench import cells
from orchestrator.store.rows import RunRow

T0 = cells.T0
RUN_FIELDS = cells.RUN_FIELDS
RUN = RunRow(id="run1", started_at=T0, finished_at=None, status="running", **RUN_FIELDS)  # as `Store.run_row` reads it
CELL = cells.record()
add_run = cells.add_run  # create a run in a store with placeholder facts, keyword fields overriding them
cell = cells.record  # a cell record with placeholder facts, keyword fields overriding them
row = cells.row  # a stored cell as `Store.cell_rows` reads it back, keyword fields overriding placeholders
