"""The results store: SQLAlchemy Core over SQLite (default) or PostgreSQL (by URL).

Runs, cells and metrics live in three tables. A cell's status is a column of its own; metrics
hold only measured numbers, never an error string. Each cell is written with its metrics in one
transaction, so a crash never leaves half a cell behind. Several orchestrators may write to one
PostgreSQL store at once: a cell's identity (run, config hash, repeat) is unique, and a write
retried after a lost connection finds the row it already committed instead of adding a second.
The schema is versioned (`orchestrator/store/migrations.py`).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, TypeVar

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError

from orchestrator.clock import now
from orchestrator.errors import BenchmatrixError, UsageError
from orchestrator.metrics import Metric
from orchestrator.status import CellStatus
from orchestrator.store import migrations
from orchestrator.store.rows import CellColumns, CellRow, RunRow

WRITE_ATTEMPTS = 4
DEFAULT_STORE = "results/results.db"
Written = TypeVar("Written")

metadata = MetaData()

JSON_COLUMNS = ("options", "config", "versions", "notes", "data_provenance", "host")  # of `cells`, stored as JSON text
DESIGN_PREFIX = "design:"  # meta key of a run's regress design (Store.record_design)
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
    Column("data_provenance", Text),  # schema 3: JSON, workloads.datasets.provenance
    Column("host", Text),  # schema 5: JSON, the machine that ran the cell (hostinfo; a Slurm cell's node)
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

# Schema 2 (see migrations.py): the queries that reports and `compare` make across runs.
Index("ix_cells_run_id", cells.c.run_id)
Index("ix_cells_config_hash", cells.c.config_hash)
Index("ix_cells_build", cells.c.framework, cells.c.version, cells.c.variant)
Index("ix_runs_started_at", runs.c.started_at)


@dataclass(frozen=True)
class CellRecord(CellColumns):
    """Everything stored about one finished cell: its columns and its measured metrics."""

    metrics: list[Metric]
    data_provenance: Optional[dict] = None  # where the data came from, as the cell's result says
    host: Optional[dict] = None  # the machine that ran it, as its backend saw it there


def store_url(location: str) -> str:
    """A URL as given, or a file path turned into a SQLite URL (its directory created)."""
    if "://" in location:
        return location
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _write_errors(write: Callable[..., Written]) -> Callable[..., Written]:
    """A write the database refuses (a cell stored twice, a full disk, a lost server) ends in an error
    that says which store and why, never in a driver's traceback."""

    @functools.wraps(write)
    def checked(self: Store, *args: Any, **kwargs: Any) -> Written:
        try:
            return write(self, *args, **kwargs)
        except IntegrityError as exc:
            raise BenchmatrixError(
                f"store {self.where}: {write.__name__} refused, the row is already stored "
                f"(is another orchestrator writing this run?): {exc.orig}"
            ) from exc
        except SQLAlchemyError as exc:
            raise BenchmatrixError(f"store {self.where}: {write.__name__} failed: {getattr(exc, 'orig', exc)}") from exc

    return checked


class Store:
    def __init__(self, location: str = DEFAULT_STORE) -> None:
        url = store_url(location)
        if url.startswith("postgres://"):  # the spelling Heroku-style tools print; SQLAlchemy wants postgresql://
            url = "postgresql://" + url.split("://", 1)[1]
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        except ImportError as exc:
            raise UsageError(f"store {location!r}: no driver for this URL ({exc})") from exc
        except ArgumentError as exc:
            raise UsageError(
                f"store {location!r}: not a path or a database URL "
                "(expected a file path, sqlite:///FILE or postgresql://USER:PASSWORD@HOST[:PORT]/DB)"
            ) from exc
        self.where = self.engine.url.render_as_string(hide_password=True)
        if self.engine.dialect.name == "sqlite":
            _configure_sqlite(self.engine)
        try:
            self.schema_version = migrations.migrate(self.engine, metadata)
        except OperationalError as exc:
            raise UsageError(f"store {self.where} does not answer: {exc.orig}") from exc

    @_write_errors
    def create_run(self, run_id: str, **fields: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(runs).values(id=run_id, started_at=now(), status="running", **fields))

    @_write_errors
    def finish_run(self, run_id: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(finished_at=now(), status=status))

    @_write_errors
    def reopen_run(self, run_id: str, host: str, seen_host: str) -> bool:
        """`run --resume`: the run is running again (with `host`, naming its new orchestrator) until it
        finishes or is interrupted anew. False, and nothing changed, when it runs and its `host` is no
        longer `seen_host`: another orchestrator took it since it was read."""
        claimable = or_(runs.c.status != "running", runs.c.host == seen_host)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(runs).where(runs.c.id == run_id, claimable).values(finished_at=None, status="running", host=host)
            )
            return done.rowcount == 1

    @_write_errors
    def record_cell(self, record: CellRecord) -> int:
        """Cell row and its metrics in one transaction; returns the cell id.

        A lost connection or a busy database is retried; a retry that meets the cell's own identity
        means the earlier attempt committed, so its id is returned and nothing is written twice.
        """
        values = _cell_values(record)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    return _insert_cell(conn, values, record.metrics)
            except IntegrityError:
                if attempt > 1:  # an earlier attempt committed before its connection was lost
                    existing = self._cell_id(record)
                    if existing is not None:
                        return existing
                raise
            except OperationalError:
                if attempt == WRITE_ATTEMPTS:
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    @_write_errors
    def record_cells(self, records: list[CellRecord]) -> list[int]:
        """Many cells in one transaction, as two bulk inserts (imports, benchmarks); the same checks
        as `record_cell`. Returns the cell ids in the order of `records`."""
        values = [_cell_values(record) for record in records]
        if not values:
            return []
        with self.engine.begin() as conn:
            inserted = conn.execute(insert(cells).returning(cells.c.id, sort_by_parameter_order=True), values)
            ids = [int(cell_id) for cell_id in inserted.scalars()]
            found = [(i, m.name, m.value, m.unit) for i, record in zip(ids, records) for m in record.metrics]
            if found:
                # The driver's executemany on plain tuples: a million metric rows in seconds, not minutes.
                mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
                sql = f"INSERT INTO metrics (cell_id, name, value, unit) VALUES ({', '.join([mark] * 4)})"
                cursor = conn.connection.cursor()
                cursor.executemany(sql, found)
                cursor.close()
        return ids

    @_write_errors
    def replace_cell(self, record: CellRecord) -> int:
        """A resumed or retried cell: its earlier row of the same identity and that row's metrics
        are deleted in the transaction that writes the new one, so there is always exactly one."""
        values = _cell_values(record)
        earlier = select(cells.c.id).where(
            cells.c.run_id == record.run_id, cells.c.config_hash == record.config_hash, cells.c.repeat == record.repeat
        )
        with self.engine.begin() as conn:
            conn.execute(delete(metrics).where(metrics.c.cell_id.in_(earlier)))
            conn.execute(delete(cells).where(cells.c.id.in_(earlier)))
            return _insert_cell(conn, values, record.metrics)

    def _cell_id(self, record: CellRecord) -> Optional[int]:
        with self.engine.connect() as conn:
            return conn.execute(
                select(cells.c.id).where(
                    cells.c.run_id == record.run_id,
                    cells.c.config_hash == record.config_hash,
                    cells.c.repeat == record.repeat,
                )
            ).scalar()

    @_write_errors
    def record_design(self, run_id: str, design: dict) -> None:
        """The design a `regress` ran `run_id` under (its id, planned looks, and alpha when a bisect step's
        share), so `compare` on its runs later judges them at the same levels. In `meta`, "design:<run id>"."""
        with self.engine.begin() as conn:
            conn.execute(insert(meta).values(key=f"{DESIGN_PREFIX}{run_id}", value=json.dumps(design)))

    def design(self, run_id: str) -> Optional[dict]:
        with self.engine.connect() as conn:
            found = conn.execute(select(meta.c.value).where(meta.c.key == f"{DESIGN_PREFIX}{run_id}")).scalar()
        return json.loads(found) if found else None

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

    def run_row(self, run_id: str) -> RunRow:
        with self.engine.connect() as conn:
            return RunRow(**conn.execute(select(runs).where(runs.c.id == run_id)).mappings().one())

    def cell_rows(self, run_id: str) -> list[CellRow]:
        """Cells of a run in the order they were stored, each with its metrics (name → value)."""
        with self.engine.connect() as conn:
            found = list(conn.execute(select(cells).where(cells.c.run_id == run_id).order_by(cells.c.id)).mappings())
            # The driver's cursor and plain tuples: a run may hold a million metrics.
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            cursor = conn.connection.cursor()
            cursor.execute(
                "SELECT m.cell_id, m.name, m.value FROM metrics m JOIN cells c ON m.cell_id = c.id "
                f"WHERE c.run_id = {mark}",
                (run_id,),
            )
            by_cell: dict[int, dict[str, float]] = {}
            for cell_id, name, value in cursor.fetchall():
                by_cell.setdefault(cell_id, {})[name] = value
            cursor.close()
        return [_cell_row(row, by_cell.get(row["id"], {})) for row in found]


def _cell_row(row: RowMapping, cell_metrics: dict[str, float]) -> CellRow:
    decoded = {key: json.loads(row[key]) if row[key] else None for key in JSON_COLUMNS}
    return CellRow(**{**row, **decoded, "status": CellStatus(row["status"]), "metrics": cell_metrics})


def _cell_values(record: CellRecord) -> dict:
    if record.status not in set(CellStatus):
        raise ValueError(f"unknown cell status {record.status!r}")
    values = {
        key: getattr(record, key)
        for key in CellRecord.__dataclass_fields__
        if key not in ("metrics", *JSON_COLUMNS)
    }
    values.update(
        status=CellStatus(record.status).value,
        options=json.dumps(record.options, sort_keys=True),
        config=json.dumps(record.config, sort_keys=True),
        versions=json.dumps(record.versions, sort_keys=True),
        notes=json.dumps(record.notes),
        data_provenance=json.dumps(record.data_provenance, sort_keys=True) if record.data_provenance else None,
        host=json.dumps(record.host, sort_keys=True) if record.host else None,
    )
    return values


def _insert_cell(conn: Connection, values: dict, cell_metrics: list[Metric]) -> int:
    cell_id = conn.execute(insert(cells).values(**values).returning(cells.c.id)).scalar_one()
    if cell_metrics:
        conn.execute(
            insert(metrics),
            [{"cell_id": cell_id, "name": m.name, "value": m.value, "unit": m.unit} for m in cell_metrics],
        )
    return int(cell_id)


def _configure_sqlite(engine: Engine) -> None:
    """WAL and a busy timeout for concurrent writers; SQLAlchemy's recipe so that SQLite's
    transactions (DDL included) start where SQLAlchemy says, with `BEGIN IMMEDIATE` on request."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
