"""A plugin's import-time code never runs on the host: `plan` and `run` learn its models in a hardened container.

The plugin below writes a file to an absolute host path and opens a network connection when it is
imported, and registers a model whose description says what it could do. Imported by the
orchestrator (as `plan` did before), the file appears on the host; discovered in a container of
the framework's image, it cannot: that container has no mount of the path, a read-only root, no
network, and runs as uid 1000.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.store.database import Store

PLUGIN = """
import os
import socket
from pathlib import Path

from workloads.models import Model, register

wrote = "no"
try:
    Path({mark!r}).write_text("a plugin's import-time code ran here, as uid " + str(os.getuid()))
    wrote = "yes"
except OSError:
    pass
network = "none"
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2).close()
    network = "reached"
except OSError:
    pass


def gluon_spy(mx, spec):
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Flatten(), mx.gluon.nn.Dense(spec.num_classes))
    return net


register(Model("spy", "image", f"uid={{os.getuid()}} wrote={{wrote}} network={{network}}", gluon=gluon_spy))
"""
SPEC = """name: spy
repeats: 1
plugins: [plugins]
systems: {cpu: {kind: cpu, memory: 2g}}
frameworks: [{name: mxnet, version: "1.9.1"}]
workloads: [{name: spy, model: spy, dataset: fashion_mnist, batch_sizes: [32], max_samples: 64, warmup_steps: 1}]
"""


@pytest.fixture
def spy(tmp_path: Path) -> tuple[Path, Path]:
    """A spec naming the spying plugin, and the host path the plugin writes when imported."""
    mark = tmp_path / "host" / "imported-on-the-host.txt"
    mark.parent.mkdir()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "spy.py").write_text(PLUGIN.format(mark=str(mark)))
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path / "spec.yaml", mark


def test_plan_and_run_discover_a_plugin_without_running_it_on_the_host(built_images, sample_data, spy, tmp_path, cli):
    spec, mark = spy
    env = {"BENCHMATRIX_CACHE": str(tmp_path / "cache")}
    planned = cli("plan", "--spec", str(spec), "--json", env=env)
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    (cell,) = json.loads(planned.stdout)
    assert cell["model"] == "spy" and cell["plugins"] == [str(tmp_path / "plugins")]
    assert not mark.exists(), mark.read_text()
    (cached,) = (tmp_path / "cache" / "plugins").glob("*.json")
    (model,) = json.loads(cached.read_text())["models"]
    # What the plugin's own code saw when it ran: the cell's uid, nothing writable, no network.
    assert model["description"] == "uid=1000 wrote=no network=none"
    assert model["apis"] == ["gluon"]

    work = tmp_path / "work"
    args = ["--data-dir", str(sample_data), "--results-dir", str(work), "--store", str(work / "results.db")]
    ran = cli("run", "--spec", str(spec), *args, env=env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    store = Store(str(work / "results.db"))
    (row,) = store.cell_rows(store.resolve_run("last"))
    assert row.status == "ok" and row.model == "spy"
    assert not mark.exists(), mark.read_text()


def test_a_plugin_that_fails_in_its_container_is_refused_naming_its_host_file(built_images, tmp_path, cli):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "needs_torch.py").write_text("import torch  # not in the MXNet image\n")
    (tmp_path / "spec.yaml").write_text(SPEC)
    planned = cli("plan", "--spec", str(tmp_path / "spec.yaml"), env={"BENCHMATRIX_CACHE": str(tmp_path / "cache")})
    assert planned.returncode == 2
    expected = f"at key 'plugins.0': {tmp_path / 'plugins' / 'needs_torch.py'}: plugin failed to import: ModuleNotFound"
    assert expected in planned.stderr, planned.stderr
