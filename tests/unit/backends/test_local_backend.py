"""LocalBackend turns Docker's errors into the backend interface's, and says which host ran the cell.

The fake client has the Docker SDK's shape for the calls a cell makes (containers.list/create,
container start/wait/reload/logs/stop/remove, ping, info, version) and raises the SDK's own
exceptions; the real engine runs cells in tests/integration/ (test_faults, test_container).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Optional

import docker.errors
import pytest
import requests.exceptions

from orchestrator.backends import BackendError, BackendLost, CellTask
from orchestrator.backends.local import LocalBackend
from orchestrator.run.scheduler import Placement
from tests.unit.run.test_scheduler import cell

DEVICE_REFUSAL = 'could not select device driver "" with capabilities: [[gpu]]'


class FakeContainer:
    def __init__(self, start_error: Optional[Exception]) -> None:
        self.start_error = start_error
        self.attrs = {"State": {"OOMKilled": False}}

    def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error

    def wait(self, timeout: float) -> dict[str, int]:
        return {"StatusCode": 0}

    def reload(self) -> None:
        return None

    def logs(self, stdout: bool, stderr: bool) -> bytes:
        return b"done\n"

    def stop(self, timeout: float) -> None:
        return None

    def remove(self, force: bool) -> None:
        return None


class FakeContainers:
    def __init__(self, start_error: Optional[Exception]) -> None:
        self.start_error = start_error

    def list(self, all: bool = False, filters: Optional[dict] = None) -> list[FakeContainer]:
        return []

    def create(self, image: str, **kwargs: Any) -> FakeContainer:
        return FakeContainer(self.start_error)


class FakeClient:
    """A DockerClient whose container start raises `start_error`, and whose ping raises `ping_error`."""

    def __init__(self, start_error: Optional[Exception] = None, ping_error: Optional[Exception] = None) -> None:
        self.containers = FakeContainers(start_error)
        self.ping_error = ping_error

    def ping(self) -> bool:
        if self.ping_error is not None:
            raise self.ping_error
        return True

    def info(self) -> dict[str, int]:
        return {"MemTotal": 8 * 2**30}

    def version(self) -> dict[str, str]:
        return {"Version": "27.0.0-fake"}


def task(tmp_path: Path, cell_dir: Optional[Path] = None) -> CellTask:
    return CellTask(
        run_id="run1",
        cell=cell(),
        image_id="sha256:" + "0" * 64,
        cell_dir=cell_dir or tmp_path / "cell",
        placement=Placement(),
        timeout_s=60,
    )


def backend(tmp_path: Path, client: FakeClient) -> LocalBackend:
    return LocalBackend(client, tmp_path / "data", sample_hz=0)  # type: ignore[arg-type]


def test_an_engine_that_refuses_the_cell_is_the_cells_error_not_a_lost_engine(tmp_path):
    refusal = docker.errors.APIError(DEVICE_REFUSAL)  # also a requests HTTPError: it must not read as "lost"
    with pytest.raises(BackendError, match="could not select device driver") as raised:
        backend(tmp_path, FakeClient(start_error=refusal)).run_cell(task(tmp_path))
    assert isinstance(raised.value.__cause__, docker.errors.APIError)


def test_an_api_error_from_an_engine_that_no_longer_answers_is_a_lost_engine(tmp_path):
    gone = requests.exceptions.ConnectionError("connection refused")
    client = FakeClient(start_error=docker.errors.APIError("500 Server Error: shutting down"), ping_error=gone)
    with pytest.raises(BackendLost, match="lost the Docker engine"):
        backend(tmp_path, client).run_cell(task(tmp_path))


def test_a_broken_connection_is_a_lost_engine(tmp_path):
    reset = requests.exceptions.ConnectionError("connection reset by peer")
    with pytest.raises(BackendLost, match="connection reset by peer"):
        backend(tmp_path, FakeClient(start_error=reset)).run_cell(task(tmp_path))


def test_a_cell_folder_that_cannot_be_made_is_the_cells_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(BackendError):
        backend(tmp_path, FakeClient()).run_cell(task(tmp_path, cell_dir=tmp_path / "a-file" / "cell"))


def test_a_finished_cell_names_this_host_as_the_one_that_ran_it(tmp_path):
    ended = backend(tmp_path, FakeClient()).run_cell(task(tmp_path))
    assert ended.exit_code == 0 and ended.host is not None
    assert ended.host["hostname"] == socket.gethostname() and ended.host["docker_version"] == "27.0.0-fake"
