"""Every bench and scripts/ Python file imports as its documented command runs it, without editing sys.path:
a renamed or removed name in the package fails here, not the next time someone measures."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BENCH = sorted(path.stem for path in (REPO / "bench").glob("*.py") if path.stem != "__init__")
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


def test_the_scripts_are_found() -> None:
    assert {"detector", "harness", "overhead", "pixels", "store_scale"} <= set(BENCH)
    assert {"bisect_sim", "sampling_cost"} <= {path.stem for path in SCRIPTS}


@pytest.mark.parametrize("name", BENCH)
def test_bench_script_imports_as_a_module(name: str) -> None:
    """`python -m bench.<name>`: the package's names only, and sys.path left as it was."""
    before = list(sys.path)
    importlib.import_module(f"bench.{name}")
    assert sys.path == before


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_script_imports_with_the_package_installed(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python scripts/<name>.py` with the package installed: imports resolve, sys.path left as it was."""
    before = list(sys.path)
    spec = importlib.util.spec_from_file_location(f"scripts_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    assert sys.path == before
