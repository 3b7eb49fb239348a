"""`data sample` and `data fetch` are safe: existing files are kept, bad sizes and unusable folders
are refused with exit 2 and the path (no traceback), downloads show their progress."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.errors import ExitCode
from orchestrator.run import data
from tests.conftest import REPO

# The CLI as uid 1000: modules are imported as root, then the process gives its privileges up.
AS_UID_1000 = "import os, sys, orchestrator.cli.main as m; os.setgid(1000); os.setuid(1000); sys.exit(m.main())"


def files_of(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_sample_keeps_files_already_there_unless_forced(tmp_path, cli):
    target = tmp_path / "fashion_mnist"
    assert cli("data", "sample", "fashion_mnist", "--dir", str(target), "--n", "50").returncode == 0
    before = files_of(target)
    done = cli("data", "sample", "fashion_mnist", "--dir", str(target), "--n", "80")
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert str(target / "train-images-idx3-ubyte.gz") in done.stderr and "--force" in done.stderr
    assert files_of(target) == before and "Traceback" not in done.stderr
    forced = cli("data", "sample", "fashion_mnist", "--dir", str(target), "--n", "80", "--force")
    assert forced.returncode == 0, forced.stderr
    assert files_of(target) != before


@pytest.mark.parametrize("n", ["0", "-5"])
def test_sample_refuses_fewer_than_one_sample(tmp_path, cli, n):
    done = cli("data", "sample", "mnist", "--dir", str(tmp_path / "mnist"), "--n", n)
    assert done.returncode == ExitCode.USAGE
    assert f"at least 1 sample per split (--n 1 or more), got {n}" in done.stderr
    assert not (tmp_path / "mnist").exists()


@pytest.mark.parametrize("command", ["sample", "fetch"])
def test_a_file_where_the_folder_should_be_is_refused(tmp_path, cli, command):
    afile = tmp_path / "afile"
    afile.write_text("")
    done = cli("data", command, "mnist", "--dir", str(afile))
    assert done.returncode == ExitCode.USAGE and f"{afile} is not a folder" in done.stderr
    nested = cli("data", command, "mnist", "--dir", str(afile / "mnist"))
    assert nested.returncode == ExitCode.USAGE
    assert f"cannot create the folder {afile / 'mnist'} (Not a directory)" in nested.stderr
    assert "Traceback" not in done.stderr + nested.stderr


def test_a_folder_this_user_cannot_write_is_refused():
    with tempfile.TemporaryDirectory() as folder:  # in /tmp: a path uid 1000 can reach (pytest's is root's own)
        Path(folder).chmod(0o755)
        locked = Path(folder) / "locked"
        locked.mkdir(mode=0o555)
        refused_as_another_user(locked)


def refused_as_another_user(locked: Path) -> None:
    argv = ["data", "sample", "mnist", "--dir", str(locked)]
    if os.geteuid() == 0:  # root writes anywhere: the refusal is for a user who is not root
        command = [sys.executable, "-c", AS_UID_1000, *argv]
    else:
        command = [sys.executable, "-m", "orchestrator", *argv]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert f"cannot write in the folder {locked}" in done.stderr and "Traceback" not in done.stderr
    assert list(locked.iterdir()) == []


def test_fetch_shows_the_progress_of_each_download(monkeypatch, tmp_path):
    served = tmp_path / "served"
    data.sample("mnist", served, n_train=300, n_test=60)
    downloads = tuple(
        data.Download((served / name).as_uri(), hashlib.sha256((served / name).read_bytes()).hexdigest())
        for name in data.info("mnist").files
    )
    monkeypatch.setitem(data.DATASETS, "mnist", dataclasses.replace(data.DATASETS["mnist"], downloads=downloads))
    screen = io.StringIO()
    placed = data.fetch("mnist", tmp_path / "mnist", console=Console(file=screen, force_terminal=True, width=120))
    assert [p.name for p in placed] == list(data.info("mnist").files)
    shown = screen.getvalue()
    assert all(path.name in shown for path in placed), shown
    images = placed[0]  # the bar's total is the file's size: "235.2/235.2 kB"
    assert f"/{images.stat().st_size / 1000:,.1f} kB" in shown, shown


def test_fetch_offline_with_or_sample_keeps_files_a_sample_wrote_before(tmp_path, cli):
    offline = {"http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    target = tmp_path / "fashion_mnist"
    first = cli("data", "fetch", "fashion_mnist", "--dir", str(target), "--or-sample", "60", env=offline)
    assert first.returncode == 0 and "wrote a generated fashion_mnist sample" in first.stdout, first.stderr
    before = files_of(target)
    again = cli("data", "fetch", "fashion_mnist", "--dir", str(target), "--or-sample", "60", env=offline)
    assert again.returncode == 0, again.stderr  # `make matrix` a second time, still offline
    assert "kept the fashion_mnist files already in" in again.stdout and files_of(target) == before
