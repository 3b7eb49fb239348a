"""How `run` and `regress` learn plugin models: the discoverer they make builds a missing image with their
console (start/end lines in a log), never an unbuildable one; `regress` builds as `run` does and its spec
copies keep the plugin folders of the spec they copy; a spec without plugins never asks a discoverer."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from orchestrator.analysis import regress
from orchestrator.analysis.regress import RegressRequest, regress_spec
from orchestrator.backends.discovery import ContainerDiscoverer
from orchestrator.images.build import BuildOptions
from orchestrator.run import runner
from orchestrator.run.plan import Filters, plan
from orchestrator.run.runner import RunRequest, building_discoverer
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import load_spec
from orchestrator.store.queries import parse_selection
from tests.conftest import REPO

SPEC = """name: plugins
repeats: 1
plugins: [plugins]
systems: {cpu: {kind: cpu}}
frameworks: [{name: mxnet, version: "1.9.1"}]
workloads: [{name: p, model: mnist_mlp, dataset: mnist, batch_sizes: [128], max_samples: 256, epochs: 1}]
"""


class Stop(Exception):
    """Raised by a faked `plan` once it has seen the discoverer it was given."""


def plugin_spec(folder: Path) -> Path:
    shutil.copytree(REPO / "examples" / "plugins", folder / "plugins")
    (folder / "m.yaml").write_text(SPEC)
    return folder / "m.yaml"


def seen_discoverer(monkeypatch, module) -> list[ContainerDiscoverer]:
    seen: list[ContainerDiscoverer] = []

    def fake_plan(spec, spec_path, catalog, filters=None, repeats=None, discover=None):
        seen.append(discover)
        raise Stop

    monkeypatch.setattr(module, "plan", fake_plan)
    return seen


def test_runs_discoverer_builds_with_the_runs_console_and_never_an_unbuildable_image(tmp_path, monkeypatch):
    catalog = load_catalog()
    console = Console(file=io.StringIO(), force_terminal=False)
    built: list[tuple[str, object]] = []
    monkeypatch.setattr(
        runner, "ensure_image", lambda client, cat, entry, options, **kw: built.append((entry.tag, kw.get("console")))
    )
    discover = building_discoverer(tmp_path / "m.yaml", catalog, BuildOptions(), console)
    assert discover.console is console
    assert discover.unbuildable == {entry.tag for entry in catalog.images if entry.unbuildable} != set()
    assert discover.build is not None
    discover.build(None, "benchmatrix/mxnet:1.9.1-cpu")  # type: ignore[arg-type]
    assert built == [("benchmatrix/mxnet:1.9.1-cpu", console)]


def test_prepare_gives_discovery_its_console(tmp_path, monkeypatch):
    spec_path = plugin_spec(tmp_path)
    seen = seen_discoverer(monkeypatch, runner)
    console = Console(file=io.StringIO(), force_terminal=False)
    request = RunRequest(spec_path, Filters(system="cpu"), None, str(tmp_path / "r.db"), tmp_path, tmp_path)
    with pytest.raises(Stop):
        runner.prepare(request, console)
    assert seen[0].console is console and seen[0].build is not None


def test_a_spec_without_plugins_never_asks_a_discoverer():
    def never(*args: object) -> list:
        raise AssertionError("a spec without plugins asked for a discovery")

    spec_path = REPO / "matrices" / "regress.yaml"
    assert plan(load_spec(spec_path), spec_path, load_catalog(), discover=never)  # type: ignore[arg-type]


def regress_request(spec_path: Path, tmp_path: Path) -> RegressRequest:
    return RegressRequest(
        parse_selection("mxnet@1.9.1"),
        parse_selection("mxnet@1.6.0-mkl"),
        spec_path,
        "cpu",
        2,
        str(tmp_path / "r.db"),
        tmp_path / "data",
        tmp_path / "results",
    )


def test_regress_spec_copies_keep_the_plugin_folders_of_the_spec_they_copy(tmp_path):
    spec_path = plugin_spec(tmp_path / "specs")
    written = regress_spec(regress_request(spec_path, tmp_path), tmp_path / "results" / "regress" / "x")
    plugins = load_spec(written).plugins
    assert [(written.parent / folder).resolve() for folder in plugins] == [(tmp_path / "specs" / "plugins").resolve()]


def test_regress_learns_plugin_models_building_images_as_run_does(tmp_path, monkeypatch):
    spec_path = plugin_spec(tmp_path / "specs")
    rounds = regress.prepare(regress_request(spec_path, tmp_path))
    seen = seen_discoverer(monkeypatch, regress)
    console = Console(file=io.StringIO(), force_terminal=False)
    with pytest.raises(Stop):
        regress.build_images(rounds, console)
    assert seen[0].build is not None and seen[0].console is console
    assert seen[0].unbuildable
    written = yaml.safe_load(rounds.specs["AB"].read_text())["plugins"]
    assert written == [str((tmp_path / "specs" / "plugins").resolve())]
