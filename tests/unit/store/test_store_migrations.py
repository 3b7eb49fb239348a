"""Schema versions of the SQLite store: the foundation's schema-1 file is migrated, a newer one refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import UsageError
from orchestrator.store import migrations
from orchestrator.store.database import Store
from tests.conftest import REPO
from tests.stores import add_run, cell

GOLDEN = Path(__file__).parent.parent / "golden"

OPEN_AND_WRITE = """
import sys
from orchestrator.store.database import Store
store = Store(sys.argv[1])
store.create_run(sys.argv[2], spec_name="t", spec_path="t", spec_hash="h", reference="tensorflow", system="cpu",
                 command="[]", tool_version="0", host="{}")
print(store.schema_version)
"""


def v1_store(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript((GOLDEN / "store_schema_v1.sql").read_text())
        conn.execute(
            "INSERT INTO runs VALUES ('old', '2026-11-22 10:00:00', NULL, 'finished', 'default', 'm.yaml', 'h',"
            " 'tensorflow', 'cpu', '[]', '0.1.0', '{\"hostname\": \"h\"}')"
        )
    return path


def columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_a_foundation_store_is_migrated_in_place(tmp_path):
    path = v1_store(tmp_path / "old.db")
    assert "ix_cells_run_id" not in indexes(path)
    store = Store(str(path))
    assert store.schema_version == migrations.LATEST == 5
    assert {"ix_cells_run_id", "ix_cells_config_hash", "ix_cells_build", "ix_runs_started_at"} <= indexes(path)
    assert {"data_provenance", "host"} <= columns(path, "cells")
    assert store.resolve_run("last") == "old"
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(migrations.LATEST),)


# The cell columns each older schema lacks, with a value each: what a store of that schema gains.
ADDED_AFTER = {
    2: {"data_provenance": {"kind": "user"}, "host": {"hostname": "node7", "slurm_node": "node7", "gpus": []}},
    3: {"host": {"hostname": "node7", "slurm_node": "node7", "gpus": []}},
    4: {"host": {"hostname": "node7", "slurm_node": "node7", "gpus": []}},
}


@pytest.mark.parametrize("version", sorted(ADDED_AFTER))
def test_an_older_store_gains_the_later_cell_columns_and_keeps_its_cells(tmp_path, version):
    added = ADDED_AFTER[version]
    path = tmp_path / f"v{version}.db"
    store = Store(str(path))
    add_run(store, "run1")
    store.record_cell(cell())
    with sqlite3.connect(path) as conn:
        for column in added:
            conn.execute(f"ALTER TABLE cells DROP COLUMN {column}")
        conn.execute(f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")
    assert not set(added) & columns(path, "cells")
    migrated = Store(str(path))
    assert migrated.schema_version == migrations.LATEST and set(added) <= columns(path, "cells")
    stored = [{column: getattr(row, column) for column in added} for row in migrated.cell_rows("run1")]
    assert stored == [dict.fromkeys(added)]
    migrated.record_cell(cell(config_hash="new", **added))
    assert {column: getattr(migrated.cell_rows("run1")[-1], column) for column in added} == added


def test_a_newer_store_is_refused_with_what_to_run_and_left_alone(tmp_path):
    path = tmp_path / "new.db"
    Store(str(path))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    with pytest.raises(UsageError, match=r"has schema 7, but this benchmatrix .* knows schemas up to 5: upgrade"):
        Store(str(path))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == ("7",)


def test_processes_opening_one_fresh_store_at_once_create_it_once(tmp_path):
    path = tmp_path / "fresh.db"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AND_WRITE, str(path), f"run{k}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == [str(migrations.LATEST)] * 4
    assert sorted(Store(str(path)).run_ids()) == [f"run{k}" for k in range(4)]


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("nosuchdriver://x/y", "no driver for this URL|not a path or a database URL"),
        ("postgresql://u:pw@127.0.0.1:1/db", "does not answer"),
    ],
)
def test_bad_store_locations_are_usage_errors(location, message):
    with pytest.raises(UsageError, match=message) as refused:
        Store(location)
    assert ":pw@" not in str(refused.value)
