"""A cell's identity is its plugins' content, not where the checkout is; stores from before still pair and resume.

Plans here learn plugin models through `tests.discovery.HostDiscoverer` (the real discoverer with a
child process for its container); `tests/integration/test_plugin_discovery.py` runs the real one.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import docker.errors
import pytest

from orchestrator.analysis.compare import Settings, compare
from orchestrator.backends.discovery import ContainerDiscoverer
from orchestrator.errors import EngineUnavailable, ExitCode, UsageError
from orchestrator.metrics import Metric
from orchestrator.run.plan import Cell, plan
from orchestrator.run.plugins import folder_digest
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import load_spec
from orchestrator.store.database import Store
from tests.conftest import REPO
from tests.discovery import HostDiscoverer
from tests.stores import cell as cell_record

GOLDEN = REPO / "tests" / "unit" / "golden"
OLD_CHECKOUT = "/work/main/examples/plugins"  # where the golden store's run found the plugin folder
OLD_RUN = "20261201-100000-aaaaaa"
LEGACY_HASH = "810f3673b7909227"  # what benchmatrix at 70d2e2c stored for that cell (absolute path hashed)
SPEC = """name: plugins
repeats: 2
plugins: [examples/plugins]
systems: {cpu: {kind: cpu}}
frameworks: [{name: mxnet, version: "1.9.1"}]
workloads: [{name: p, model: mnist_mlp, dataset: mnist, batch_sizes: [128], max_samples: 256, epochs: 1}]
"""


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def checkout(root: Path) -> Path:
    """A copy of the spec and the example plugin as another clone would hold them; returns the spec path."""
    shutil.copytree(REPO / "examples" / "plugins", root / "examples" / "plugins")
    (root / "m.yaml").write_text(SPEC)
    return root / "m.yaml"


def planned(spec_path: Path, catalog, cache: Path) -> list[Cell]:
    return plan(load_spec(spec_path), spec_path, catalog, discover=HostDiscoverer(spec_path, cache))


def test_the_same_spec_from_two_checkouts_has_the_same_identity(tmp_path, catalog):
    a = planned(checkout(tmp_path / "a"), catalog, tmp_path / "cache")
    b = planned(checkout(tmp_path / "b"), catalog, tmp_path / "cache")
    assert a[0].plugins != b[0].plugins  # mounted from where each checkout is ...
    assert [c.config_hash for c in a] == [c.config_hash for c in b]  # ... the same cells
    assert a[0].plugin_digests == (folder_digest(REPO / "examples" / "plugins"),)


def test_editing_a_plugin_changes_the_identity(tmp_path, catalog):
    spec_path = checkout(tmp_path / "a")
    before = planned(spec_path, catalog, tmp_path / "cache")[0].config_hash
    plugin = tmp_path / "a" / "examples" / "plugins" / "mnist_mlp.py"
    plugin.write_text(plugin.read_text().replace("Dense(512", "Dense(256"))
    assert planned(spec_path, catalog, tmp_path / "cache")[0].config_hash != before
    (tmp_path / "a" / "examples" / "plugins" / "helpers.txt").write_text("a new file is content too\n")
    assert len({before, planned(spec_path, catalog, tmp_path / "cache")[0].config_hash}) == 2


def test_discoveries_are_cached_by_plugin_content(tmp_path, catalog):
    spec_a, spec_b = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    first = HostDiscoverer(spec_a, tmp_path / "cache")
    plan(load_spec(spec_a), spec_a, catalog, discover=first)
    assert first.launched == ["benchmatrix/mxnet:1.9.1-cpu"]
    again = HostDiscoverer(spec_b, tmp_path / "cache")  # another checkout, the same files: no container
    assert plan(load_spec(spec_b), spec_b, catalog, discover=again)[0].model == "mnist_mlp"
    assert again.launched == []
    (tmp_path / "b" / "examples" / "plugins" / "mnist_mlp.py").write_text(
        (tmp_path / "b" / "examples" / "plugins" / "mnist_mlp.py").read_text() + "\n# edited\n"
    )
    plan(load_spec(spec_b), spec_b, catalog, discover=again)
    assert again.launched == ["benchmatrix/mxnet:1.9.1-cpu"]


def test_without_an_engine_or_a_cached_discovery_plan_says_why(tmp_path, catalog, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    spec_path = checkout(tmp_path / "a")
    with pytest.raises(
        EngineUnavailable, match=r"m.yaml names model plugins: what they register under mxnet"
    ) as caught:
        plan(load_spec(spec_path), spec_path, catalog, discover=ContainerDiscoverer(spec_path, cache_root=tmp_path))
    assert caught.value.exit_code == ExitCode.USAGE


class NoImages:
    """A Docker client's `images` with nothing built (the only part the discoverer asks before a container)."""

    class images:  # noqa: N801 - the attribute name of docker.DockerClient
        @staticmethod
        def get(tag: str) -> None:
            raise docker.errors.ImageNotFound(f"no such image: {tag}")


def test_without_a_built_image_plan_names_the_command_that_builds_one(tmp_path, catalog):
    spec_path = checkout(tmp_path / "a")
    discover = ContainerDiscoverer(spec_path, client=NoImages(), cache_root=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"images build --framework mxnet`\), or `run` the spec"):
        plan(load_spec(spec_path), spec_path, catalog, discover=discover)


def old_store(path: Path, plugins: Path) -> Path:
    """The golden schema-3 store, its run's plugin folder at `plugins` (the checkout it ran from)."""
    with sqlite3.connect(path) as conn:
        conn.executescript((GOLDEN / "store_schema_v3_plugins.sql").read_text().replace(OLD_CHECKOUT, str(plugins)))
        assert {row[0] for row in conn.execute("SELECT config_hash FROM cells")} == {LEGACY_HASH}
    return path


def test_an_old_store_pairs_and_resumes_with_a_new_run_from_another_checkout(tmp_path, catalog):
    old_checkout = checkout(tmp_path / "old")
    store = Store(str(old_store(tmp_path / "results.db", old_checkout.parent / "examples" / "plugins")))
    new_cells = planned(checkout(tmp_path / "new"), catalog, tmp_path / "cache")
    migrated = store.cell_rows(OLD_RUN)
    # Resume looks cells up by (config_hash, repeat): every new cell finds its old row.
    stored = {(row.config_hash, row.repeat) for row in migrated}
    assert {(c.config_hash, c.repeat) for c in new_cells} == stored
    assert migrated[0].config["plugin_digests"] == list(new_cells[0].plugin_digests)
    store.create_run(
        "new",
        **{key: "x" for key in ("spec_name", "spec_path", "spec_hash", "command", "host")},
        reference="mxnet",
        system="cpu",
        tool_version="0",
    )
    for c in new_cells:
        store.record_cell(
            cell_record(
                run_id="new",
                config_hash=c.config_hash,
                repeat=c.repeat,
                framework=c.framework,
                version=c.version,
                variant=c.variant,
                workload=c.workload,
                model=c.model,
                dataset=c.dataset,
                batch_size=c.batch_size,
                epochs=c.epochs,
                config=c.to_dict(),
                image=c.image,
                versions={"mxnet": "1.9.1"},
                metrics=[Metric("train_img_per_s", 1000.0 + c.repeat, "img/s")],
            )
        )
    comparison = compare(migrated, store.cell_rows("new"), "run", Settings(), OLD_RUN, "new")
    assert len(comparison.pairs) == 1 and not comparison.only_baseline and not comparison.only_candidate


def test_an_old_cell_whose_plugin_folder_is_gone_keeps_its_hash_and_stays_readable(tmp_path):
    store = Store(str(old_store(tmp_path / "results.db", tmp_path / "deleted" / "plugins")))
    rows = store.cell_rows(OLD_RUN)
    assert [row.config_hash for row in rows] == [LEGACY_HASH] * 2
    assert [row.metrics for row in rows] == [{"train_img_per_s": 1000.0}, {"train_img_per_s": 1001.0}]


def test_a_plan_of_plugins_without_a_discoverer_is_a_programming_error(tmp_path, catalog):
    spec_path = checkout(tmp_path / "a")
    with pytest.raises(ValueError, match="names plugins: plan\\(\\) needs a discoverer"):
        plan(load_spec(spec_path), spec_path, catalog)
