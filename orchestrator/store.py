"""The results store: SQLAlchemy Core over SQLite (default) or PostgreSQL (by URL).

Runs, cells and metrics live in three tables. A cell's status is a column of its own; metrics
hold only measured numbers, never an error string. Each cell is written with its metrics in one
transaction, so a crash never leaves half a cell behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from orchestrator.errors import UsageError

SCHEMA_VERSION = 1
DEFAULT_STORE = "results/results.db"
STATUSES = ("ok", "oom", "timeout", "error", "interrupted")

metadata = MetaData()

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))

runs = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),
    Column("spec_name", String(64), nullable=False),
    Column("spec_path", Text, nullable=False),
    Column("spec_hash", String(64), nullable=False),
    Column("reference", String(64), nullable=False),
    Column("system", String(64)),
    Column("command", Text, nullable=False),
    Column("tool_version", String(32), nullable=False),
    Column("host", Text, nullable=False),
)

cells = Table(
    "cells",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("runs.id"), nullable=False),
    Column("config_hash", String(32), nullable=False),
    Column("repeat", Integer, nullable=False),
    Column("system", String(64), nullable=False),
    Column("framework", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("workload", String(64), nullable=False),
    Column("model", String(64), nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("epochs", Integer, nullable=False),
    Column("options", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("image", Text, nullable=False),
    Column("image_id", String(128)),
    Column("status", String(16), nullable=False),
    Column("exit_code", Integer),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("log_path", Text),
    Column("result_path", Text),
    Column("versions", Text),
    Column("notes", Text),
    Column("log_tail", Text),
    UniqueConstraint("run_id", "config_hash", "repeat", name="uq_cell_identity"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("cell_id", Integer, ForeignKey("cells.id"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Float, nullable=False),
    Column("unit", String(16), nullable=False),
)


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    unit: str


@dataclass(frozen=True)
class CellRecord:
    """Everything stored about one finished cell."""

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
    options: dict
    config: dict
    image: str
    image_id: Optional[str]
    status: str
    exit_code: Optional[int]
    started_at: datetime
    finished_at: datetime
    log_path: Optional[str]
    result_path: Optional[str]
    versions: dict
    notes: list[str]
    log_tail: Optional[str]
    metrics: list[Metric]


def now() -> datetime:
    return datetime.now(timezone.utc)


def store_url(location: str) -> str:
    """A URL as given, or a file path turned into a SQLite URL (its directory created)."""
    if "://" in location:
        return location
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class Store:
    def __init__(self, location: str = DEFAULT_STORE) -> None:
        self.engine: Engine = create_engine(store_url(location))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        self._check_schema()

    def _check_schema(self) -> None:
        with self.engine.begin() as conn:
            found = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
            if found is None:
                conn.execute(insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(found) > SCHEMA_VERSION:
                raise UsageError(
                    f"the store has schema {found}, newer than this tool's {SCHEMA_VERSION}: upgrade benchmatrix"
                )

    def create_run(self, run_id: str, **fields: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(runs).values(id=run_id, started_at=now(), status="running", **fields))

    def finish_run(self, run_id: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(finished_at=now(), status=status))

    def record_cell(self, record: CellRecord) -> int:
        """Cell row and its metrics in one transaction; returns the cell id."""
        if record.status not in STATUSES:
            raise ValueError(f"unknown cell status {record.status!r}")
        values = {
            key: getattr(record, key)
            for key in CellRecord.__dataclass_fields__
            if key not in ("metrics", "options", "config", "versions", "notes")
        }
        values.update(
            options=json.dumps(record.options, sort_keys=True),
            config=json.dumps(record.config, sort_keys=True),
            versions=json.dumps(record.versions, sort_keys=True),
            notes=json.dumps(record.notes),
        )
        with self.engine.begin() as conn:
            cell_id = conn.execute(insert(cells).values(**values)).inserted_primary_key[0]
            if record.metrics:
                conn.execute(
                    insert(metrics),
                    [{"cell_id": cell_id, "name": m.name, "value": m.value, "unit": m.unit} for m in record.metrics],
                )
        return int(cell_id)

    def run_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(runs.c.id).order_by(runs.c.started_at)).scalars())

    def resolve_run(self, run: Optional[str]) -> str:
        """A run id as given, or the newest run for None / 'last'."""
        ids = self.run_ids()
        if not ids:
            raise UsageError("the store has no runs yet: `python -m orchestrator run --system cpu` makes one")
        if run in (None, "last"):
            return ids[-1]
        if run not in ids:
            raise UsageError(f"no run '{run}' in the store; newest runs: {', '.join(ids[-5:])}")
        return run

    def run_row(self, run_id: str) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(runs).where(runs.c.id == run_id)).mappings().one())

    def cell_rows(self, run_id: str) -> list[dict]:
        """Cells of a run, each with a `metrics` dict of name → value."""
        with self.engine.connect() as conn:
            rows = [
                dict(row)
                for row in conn.execute(select(cells).where(cells.c.run_id == run_id).order_by(cells.c.id)).mappings()
            ]
            found = conn.execute(
                select(metrics).join(cells, metrics.c.cell_id == cells.c.id).where(cells.c.run_id == run_id)
            ).mappings()
            by_cell: dict[int, dict[str, float]] = {}
            for metric in found:
                by_cell.setdefault(metric["cell_id"], {})[metric["name"]] = metric["value"]
        for row in rows:
            row["metrics"] = by_cell.get(row["id"], {})
            for key in ("options", "config", "versions", "notes"):
                row[key] = json.loads(row[key]) if row[key] else None
        return rows


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
