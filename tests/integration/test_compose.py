"""docker-compose.yml on the real engine with Debian's docker-compose 1.29: the shared store takes
a run, `report` reads it back over the network, and the report server serves the page."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from orchestrator.store.database import Store
from tests.conftest import REPO
from tests.stores import add_run
from tests.unit.render.test_report import record


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(container: str, timeout_s: float = 120) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Health.Status}}", container], capture_output=True, text=True
        ).stdout.strip()
        if state == "healthy":
            return True
        time.sleep(1)
    return False


@pytest.fixture
def compose(engine, tmp_path, cli):
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the compose test: install docker-compose (`make test` does as root)")
        pytest.skip("docker-compose is not installed (as root, `make test` installs it)")
    if not engine.images.list(name="benchmatrix/base:bookworm"):
        done = cli("base", "bootstrap", "--suite", "bookworm", timeout=1800)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    password = "pw-" + secrets.token_hex(8)
    env_file = tmp_path / "compose.env"
    env_file.write_text(f"BENCHMATRIX_DB_USER=bench\nBENCHMATRIX_DB_PASSWORD={password}\nBENCHMATRIX_DB_NAME=results\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    reports.chmod(0o755)
    ports = {"BENCHMATRIX_STORE_PORT": _free_port(), "BENCHMATRIX_REPORTS_PORT": _free_port()}
    env = {
        **os.environ,
        "BENCHMATRIX_COMPOSE_ENV": str(env_file),
        "BENCHMATRIX_REPORTS": str(reports),
        **{key: str(port) for key, port in ports.items()},
    }
    project = "bmtest" + secrets.token_hex(3)
    command = ["docker-compose", "-p", project, "-f", str(REPO / "docker-compose.yml")]
    try:
        started = time.monotonic()
        up = subprocess.run([*command, "up", "-d", "--build"], env=env, capture_output=True, text=True, timeout=900)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert _healthy(f"{project}_store_1") and _healthy(f"{project}_reports_1")
        print(f"compose up (build included) to healthy: {time.monotonic() - started:.1f} s")
        url = f"postgresql://bench:{password}@127.0.0.1:{ports['BENCHMATRIX_STORE_PORT']}/results"
        yield url, reports, ports["BENCHMATRIX_REPORTS_PORT"], password
    finally:
        subprocess.run([*command, "down", "-v"], env=env, capture_output=True, timeout=300)


def test_store_and_report_server_come_up_and_serve_a_report(compose, cli):
    url, reports, port, password = compose
    store = Store(url)
    add_run(store, "composerun", spec_name="compose", host='{"hostname": "h"}')
    for repeat in range(3):
        store.record_cell(record("mxnet", "cpu", 0, "mlp", 32, 1, repeat, run_id="composerun"))
    done = cli("report", "--store", url, "--last", "--out", str(reports / "composerun"))
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr
    (reports / "composerun").chmod(0o755)
    for path in (reports / "composerun").iterdir():
        path.chmod(0o644)
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/composerun/index.html", timeout=10).read().decode()
    assert "benchmatrix report — run composerun" in page and "data:image/png;base64," in page
    listing = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
    assert "composerun/" in listing
