"""The store on a real PostgreSQL server (Debian's `postgresql`), started for these tests.

The server runs from a temporary directory on a free localhost port as the `postgres` system user
(PostgreSQL refuses to run as root) and is stopped afterwards. Without the binaries the tests are
skipped with the reason, except in CI, where they must run.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from orchestrator.errors import UsageError
from orchestrator.store import migrations
from orchestrator.store.database import Store, cells, metrics
from tests.conftest import REPO
from tests.stores import add_run

USER, PASSWORD = "bench", "s3cret-" + secrets.token_hex(4)

# A writer process as another orchestrator would be: opens the store (maybe migrating a fresh one),
# creates its run and records its cells one transaction each. Prints "inserted conflicts".
WRITER = """
import sys
import time
from datetime import datetime, timezone
from orchestrator.errors import BenchmatrixError
from orchestrator.metrics import Metric
from orchestrator.store.database import CellRecord, Store

url, run_id, create, n, pause = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]), float(sys.argv[5])
store = Store(url)
if create:
    store.create_run(run_id, spec_name="t", spec_path="t.yaml", spec_hash="h", reference="tensorflow",
                     system="cpu", command="[]", tool_version="0", host='{"hostname": "writer"}')
t0 = datetime.now(timezone.utc)
inserted = conflicts = 0
for i in range(n):
    record = CellRecord(
        run_id=run_id, config_hash=f"cfg{i:04d}", repeat=0, system="cpu", framework="mxnet", version="1.9.1",
        variant="cpu", workload="mlp", model="mlp", dataset="fashion_mnist", batch_size=32, epochs=1, options={},
        config={}, image="benchmatrix/mxnet:1.9.1-cpu", image_id="sha256:x", status="ok", exit_code=0,
        started_at=t0, finished_at=t0, log_path=None, result_path=None, versions={"mxnet": "1.9.1"}, notes=[],
        log_tail=None, metrics=[Metric("train_img_per_s", 1000.0 + i, "img/s"), Metric("params", 101770, "count")],
    )
    try:
        store.record_cell(record)
        inserted += 1
    except BenchmatrixError:  # the cell is already stored
        conflicts += 1
    time.sleep(pause)
print(inserted, conflicts)
"""


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    as_postgres: bool

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def command(self, *argv: str) -> list[str]:
        exe = [str(self.bindir / argv[0]), *argv[1:]]
        return ["runuser", "-u", "postgres", "--", *exe] if self.as_postgres else exe

    def ctl(self, *argv: str) -> None:
        done = subprocess.run(
            self.command("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "server.log"), "-w", *argv),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr + (self.root / "server.log").read_text()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = "t_" + secrets.token_hex(4)
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()
        return self.url(name)


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: install Debian's postgresql (`make test` does as root)")
        pytest.skip("no PostgreSQL server binaries (as root, `make test` installs postgresql)")
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="benchmatrix-pg-"))
    root.chmod(0o755)
    (root / "pw").write_text(PASSWORD + "\n")
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(root / "pw", "postgres", "postgres")
    server = PostgresServer(bindir, root, _free_port(), as_postgres)
    done = subprocess.run(
        server.command(
            "initdb",
            "-D",
            str(server.datadir),
            f"--username={USER}",
            f"--pwfile={root / 'pw'}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with open(server.datadir / "postgresql.conf", "a") as conf:
        conf.write(f"port = {server.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n")
        conf.write("fsync = off\nmax_connections = 50\n")
    server.ctl("start")
    try:
        yield server
    finally:
        server.ctl("stop", "-m", "fast")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres) -> str:
    return postgres.new_database()


def writers(url: str, jobs: list[tuple[str, bool, int, float]]) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, run_id, "1" if create else "0", str(n), str(pause)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run_id, create, n, pause in jobs
    ]


def finished(processes: list[subprocess.Popen]) -> list[tuple[int, int]]:
    counts = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        inserted, conflicts = out.split()
        counts.append((int(inserted), int(conflicts)))
    return counts


def test_round_trip_and_schema_on_postgres(pg_url):
    store = Store(pg_url)
    assert store.engine.dialect.name == "postgresql" and store.schema_version == migrations.LATEST
    add_run(store, "r1", host='{"hostname": "h"}')
    finished(writers(pg_url, [("r1", False, 3, 0.0)]))
    rows = store.cell_rows("r1")
    assert [row.metrics["train_img_per_s"] for row in rows] == [1000.0, 1001.0, 1002.0]
    assert rows[0].versions == {"mxnet": "1.9.1"} and store.resolve_run("last") == "r1"


def test_concurrent_orchestrators_on_a_fresh_store_lose_and_duplicate_nothing(pg_url):
    """Four processes open the same empty database at once (all race to create the schema) and each
    writes its own run of 60 cells."""
    counts = finished(writers(pg_url, [(f"run{k}", True, 60, 0.0) for k in range(4)]))
    assert counts == [(60, 0)] * 4
    store = Store(pg_url)
    assert sorted(store.run_ids()) == [f"run{k}" for k in range(4)]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cells)).scalar() == 240
        assert conn.execute(select(func.count()).select_from(metrics)).scalar() == 480
        distinct = select(cells.c.run_id, cells.c.config_hash, cells.c.repeat).distinct().subquery()
        assert conn.execute(select(func.count()).select_from(distinct)).scalar() == 240
    for k in range(4):
        speeds = sorted(row.metrics["train_img_per_s"] for row in store.cell_rows(f"run{k}"))
        assert speeds == [1000.0 + i for i in range(60)]


def test_the_same_cell_written_by_several_processes_is_stored_once(pg_url):
    add_run(Store(pg_url), "shared")
    counts = finished(writers(pg_url, [("shared", False, 30, 0.0) for _ in range(3)]))
    assert sum(inserted for inserted, _ in counts) == 30
    assert all(inserted + conflicts == 30 for inserted, conflicts in counts)
    assert len(Store(pg_url).cell_rows("shared")) == 30


def test_writes_survive_a_server_restart(postgres, pg_url):
    """The server restarts while a writer is mid-run: every cell is stored once."""
    process = writers(pg_url, [("restarted", True, 80, 0.05)])
    time.sleep(2.0)
    restart = threading.Thread(target=postgres.ctl, args=("restart", "-m", "fast"))
    restart.start()
    restart.join(timeout=120)
    assert finished(process) == [(80, 0)]
    rows = Store(pg_url).cell_rows("restarted")
    assert sorted(row.config_hash for row in rows) == [f"cfg{i:04d}" for i in range(80)]


def test_an_older_store_is_migrated_and_a_newer_one_refused(pg_url):
    store = Store(pg_url)
    with store.engine.begin() as conn:
        for name in ("ix_cells_run_id", "ix_cells_config_hash", "ix_cells_build", "ix_runs_started_at"):
            conn.execute(text(f"DROP INDEX {name}"))
        conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
    assert Store(pg_url).schema_version == migrations.LATEST
    with store.engine.connect() as conn:
        indexes = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'cells'")).scalars())
        assert {"ix_cells_run_id", "ix_cells_config_hash", "ix_cells_build"} <= indexes
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    with pytest.raises(UsageError, match="has schema 99.*upgrade it first") as refused:
        Store(pg_url)
    assert PASSWORD not in str(refused.value)


def test_cli_reads_the_store_named_by_env_or_flag(pg_url, cli):
    finished(writers(pg_url, [("clirun", True, 2, 0.0)]))
    by_env = cli("results", "--format", "json", env={"BENCHMATRIX_STORE": pg_url})
    assert by_env.returncode == 0, by_env.stderr
    rows = json.loads(by_env.stdout)
    assert [row["run_id"] for row in rows] == ["clirun", "clirun"] and rows[0]["host"] == "writer"
    by_flag = cli("results", "--store", pg_url, "--run", "clirun")
    assert by_flag.returncode == 0 and "Training speed" in by_flag.stdout


def test_unreachable_store_is_a_usage_error(postgres, cli):
    done = cli("results", "--store", f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{_free_port()}/none")
    assert done.returncode == 2 and "does not answer" in done.stderr
    assert PASSWORD not in done.stderr
