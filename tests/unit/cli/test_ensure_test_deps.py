"""`make test`'s scripts/ensure-test-deps.sh decides what to install from what is there and who runs it.

Its decisions, with `--dry-run` and a PATH holding only stubs: nothing is installed or started here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "ensure-test-deps.sh"
TOOLS = ("slurmctld", "slurmd", "sinfo", "munged", "munge", "docker-compose")
PACKAGES = "slurm-wlm munge docker-compose postgresql"
ENGINE = REPO / "scripts" / "ensure-engine.sh"


def decide(tmp_path: Path, uid: int, present: tuple[str, ...], postgres: bool = False) -> str:
    """The script's output with only `present` (and `id`, answering `uid`) on its PATH."""
    bin_dir, pg_root = tmp_path / "bin", tmp_path / "postgresql"
    bin_dir.mkdir()
    for name, body in [("id", f"echo {uid}"), *((tool, "exit 0") for tool in present)]:
        (bin_dir / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    if postgres:
        (pg_root / "15" / "bin").mkdir(parents=True)
        (pg_root / "15" / "bin" / "initdb").write_text("")
    done = subprocess.run(
        [shutil.which("bash"), str(SCRIPT), "--dry-run"],
        env={"PATH": str(bin_dir), "BENCHMATRIX_PG_ROOT": str(pg_root)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_root_on_a_fresh_machine_installs_everything_then_starts_the_engine(tmp_path):
    lines = decide(tmp_path, 0, present=()).splitlines()
    assert lines == [f"ensure-test-deps: installing {PACKAGES}", f"ensure-test-deps: then {ENGINE}"]


@pytest.mark.parametrize(
    "missing, package",
    [("sinfo", "slurm-wlm"), ("munged", "munge"), ("docker-compose", "docker-compose"), (None, "postgresql")],
)
def test_root_installs_only_what_is_missing(tmp_path, missing, package):
    present = tuple(tool for tool in TOOLS if tool != missing)
    output = decide(tmp_path, 0, present, postgres=missing is not None)
    assert f"ensure-test-deps: installing {package}\n" in output


def test_root_with_everything_there_only_makes_sure_of_the_engine(tmp_path):
    assert decide(tmp_path, 0, TOOLS, postgres=True) == f"ensure-test-deps: then {ENGINE}\n"


def test_not_root_installs_nothing_and_says_what_is_skipped(tmp_path):
    lines = decide(tmp_path, 1000, present=("docker-compose",)).splitlines()
    assert lines == [
        "ensure-test-deps: not root, so slurm-wlm munge postgresql cannot be installed here: "
        "the tests that need them are skipped, each with its reason",
        "ensure-test-deps: no Docker engine answers and this is not root: the engine tests are skipped",
    ]
