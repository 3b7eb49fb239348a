"""Versioned schema migrations for the results store.

A fresh store is created at the newest schema. An older store is brought up to date when this
tool opens it, all steps in one transaction under a lock (PostgreSQL advisory lock, SQLite
`BEGIN IMMEDIATE`), so orchestrators opening one store at the same moment never both migrate it.
A store newer than this tool is refused, saying what to run; nothing is changed then.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlalchemy import Connection, Engine, MetaData, inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from orchestrator import __version__
from orchestrator.errors import UsageError
from orchestrator.run.plan import config_hash_of
from orchestrator.run.plugins import folder_digest

# Any constant works: every benchmatrix process that migrates takes this one lock.
POSTGRES_LOCK_KEY = 0x62656E63686D6178
VERSION_KEY = "schema_version"


@dataclass(frozen=True)
class Migration:
    version: int  # the schema version this step produces
    description: str
    apply: Callable[[Connection, MetaData], None]


def _create_indexes(*names: str) -> Callable[[Connection, MetaData], None]:
    def apply(conn: Connection, metadata: MetaData) -> None:
        found = {str(index.name): index for table in metadata.tables.values() for index in table.indexes}
        for name in names:
            found[name].create(conn, checkfirst=True)

    return apply


def _add_column(table: str, name: str) -> Callable[[Connection, MetaData], None]:
    """ALTER TABLE … ADD COLUMN with the column's type as `metadata` declares it; existing rows get NULL."""

    def apply(conn: Connection, metadata: MetaData) -> None:
        if name in {column["name"] for column in inspect(conn).get_columns(table)}:
            return
        kind = metadata.tables[table].c[name].type.compile(conn.dialect)
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))

    return apply


def _hash_plugins_by_content(conn: Connection, metadata: MetaData) -> None:
    """Cells stored with plugins were hashed by the folders' absolute paths; rehash them by the folders' content.

    Older stores never recorded the content, so the content read now stands for it: a folder still at
    its recorded path is assumed unedited since (what `--resume` from that checkout assumed too). A cell
    whose folder is gone, or whose new identity another cell of its run already holds, keeps its old
    hash: still readable, paired with nothing new (as before).
    """
    cells = metadata.tables["cells"]
    rows = conn.execute(
        select(cells.c.id, cells.c.run_id, cells.c.repeat, cells.c.config).where(cells.c.config.like('%"plugins": ["%'))
    ).all()
    taken = {tuple(key) for key in conn.execute(select(cells.c.run_id, cells.c.config_hash, cells.c.repeat))}
    digests: dict[str, Optional[str]] = {}
    for cell_id, run_id, repeat, stored in rows:
        config = json.loads(stored)
        folders = config.get("plugins") or []
        if not folders or config.get("plugin_digests"):
            continue
        for folder in folders:
            if folder not in digests:
                digests[folder] = folder_digest(Path(folder)) if Path(folder).is_dir() else None
        found = [digests[folder] for folder in folders]
        if None in found:
            continue
        config["plugin_digests"] = found
        new_hash = config_hash_of(config)
        if (run_id, new_hash, repeat) in taken:
            continue
        taken.add((run_id, new_hash, repeat))
        config["config_hash"] = new_hash
        conn.execute(
            update(cells)
            .where(cells.c.id == cell_id)
            .values(config_hash=new_hash, config=json.dumps(config, sort_keys=True))
        )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "indexes for cross-run queries: cells by run, by config and by build; runs by start time",
        _create_indexes("ix_cells_run_id", "ix_cells_config_hash", "ix_cells_build", "ix_runs_started_at"),
    ),
    Migration(
        3,
        "cells.data_provenance: where each cell's data came from (official, generated or user; NULL before)",
        _add_column("cells", "data_provenance"),
    ),
    Migration(
        4,
        "cells.config_hash by plugin content: cells with plugins rehashed by their folders' sha256, not their paths",
        _hash_plugins_by_content,
    ),
    Migration(
        5,
        "cells.host: the machine that ran each cell (a Slurm cell's node, not the submit host; NULL before)",
        _add_column("cells", "host"),
    ),
)
LATEST = MIGRATIONS[-1].version


def stored_version(conn: Connection, metadata: MetaData) -> Optional[int]:
    """The store's schema version, or None for an empty database."""
    if not inspect(conn).has_table("meta"):
        return None
    meta = metadata.tables["meta"]
    found = conn.execute(select(meta.c.value).where(meta.c.key == VERSION_KEY)).scalar()
    return int(found) if found is not None else None


def migrate(engine: Engine, metadata: MetaData) -> int:
    """Bring the store to LATEST (or create it there); returns the version it is at."""
    where = engine.url.render_as_string(hide_password=True)
    with engine.connect() as conn:
        found = stored_version(conn, metadata)
    if found == LATEST:
        return found
    _refuse_newer(found, where)
    try:
        with engine.connect().execution_options(sqlite_begin="BEGIN IMMEDIATE") as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRES_LOCK_KEY})")
            found = stored_version(conn, metadata)  # another process may have migrated while we waited
            _refuse_newer(found, where)
            if found is None:
                metadata.create_all(conn)
                conn.execute(metadata.tables["meta"].insert().values(key=VERSION_KEY, value=str(LATEST)))
                return LATEST
            for step in MIGRATIONS:
                if step.version > found:
                    step.apply(conn, metadata)
            _set_version(conn, metadata, LATEST)
    except DBAPIError as exc:
        raise UsageError(
            f"{where}: schema {found} must be migrated to {LATEST} and that failed ({exc.orig}); "
            "open it once with a database user allowed to create tables and indexes "
            "(e.g. `python -m orchestrator results --store URL-OF-THE-OWNER`), which migrates it"
        ) from exc
    return LATEST


def _set_version(conn: Connection, metadata: MetaData, version: int) -> None:
    meta = metadata.tables["meta"]
    conn.execute(update(meta).where(meta.c.key == VERSION_KEY).values(value=str(version)))


def _refuse_newer(found: Optional[int], where: str) -> None:
    if found is not None and found > LATEST:
        raise UsageError(
            f"{where} has schema {found}, but this benchmatrix ({__version__}) knows schemas up to {LATEST}: "
            "upgrade it first (`git pull && make install` in the checkout, or "
            "`pip install --upgrade benchmatrix`); the store was not changed"
        )
