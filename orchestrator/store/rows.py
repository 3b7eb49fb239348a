"""What the store's reads return: one typed row per stored run and cell, its JSON columns decoded.

The schema (database.py) is unchanged; a read turns each row into these, so a caller's typo in a
column name is an AttributeError at the line (and a mypy error), not a KeyError far from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

from orchestrator.status import CellStatus


@dataclass(frozen=True)
class RunRow:
    """A `runs` row."""

    id: str
    started_at: datetime
    finished_at: Optional[datetime]
    status: str
    spec_name: str
    spec_path: str
    spec_hash: str
    reference: str
    system: Optional[str]
    command: str
    tool_version: str
    host: str  # JSON: the host record (hostinfo), the orchestrator's owner key among it


@dataclass(frozen=True)
class CellColumns:
    """A cell's columns, as `CellRecord` writes them and `CellRow` reads them back (JSON ones decoded;
    None where a store holds none)."""

    run_id: str
    config_hash: str
    repeat: int
    system: str
    framework: str
    version: str
    variant: str
    workload: str
    model: str
    dataset: str
    batch_size: int
    epochs: int
    options: Optional[dict[str, Any]]
    config: Optional[dict[str, Any]]
    image: str
    image_id: Optional[str]
    status: CellStatus
    exit_code: Optional[int]
    started_at: datetime
    finished_at: datetime
    log_path: Optional[str]
    result_path: Optional[str]
    versions: Optional[dict[str, str]]
    notes: Optional[list[str]]
    log_tail: Optional[str]


@dataclass(frozen=True)
class CellRow(CellColumns):
    """A stored cell as `Store.cell_rows` reads it: its id, its columns and its metrics (name → value)."""

    id: int
    data_provenance: Optional[dict[str, Any]]
    host: Optional[dict[str, Any]] = None  # the machine that ran the cell (schema 5); None before
    metrics: dict[str, float] = field(default_factory=dict)
