"""The air-gapped round trip on the real engine, with a framework image:
save → remove the image → load → run a real cell from the loaded image with its network off.

The image is the test's own (a nonce label on `benchmatrix/mxnet:1.9.1-cpu`): a new id that can
really be removed and loaded again, while the shared image and its layers stay untouched.
"""

from __future__ import annotations

import json
import time

import pytest

from orchestrator.backends import CellTask
from orchestrator.backends.local import LocalBackend
from orchestrator.run import data
from orchestrator.run.plan import Filters, plan
from orchestrator.run.scheduler import Placement
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import load_spec
from tests.integration.test_bundle import build_labelled, on_engine, remove_image
from workloads.result import Result, read_result

SPEC = """
name: roundtrip
repeats: 1
systems: {cpu: {kind: cpu, memory: 2g}}
frameworks: [{name: mxnet, version: "1.9.1"}]
workloads: [{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 640, warmup_steps: 5}]
"""


@pytest.fixture
def framework_image(engine, built_images):
    image = build_labelled(engine, "benchmatrix/mxnet:1.9.1-cpu", "bundle-mxnet")
    yield image
    remove_image(engine, image.id)


def network_connects(engine, image_id: str, since: int) -> list[str]:
    """Names of the networks that containers of `image_id` were connected to since `since`."""
    until = int(time.time()) + 1
    created = {
        event["id"]
        for event in engine.events(since=since, until=until, decode=True, filters={"type": "container"})
        if event["Action"] == "create" and event["Actor"]["Attributes"].get("image") == image_id
    }
    return [
        event["Actor"]["Attributes"]["name"]
        for event in engine.events(since=since, until=until, decode=True, filters={"type": "network"})
        if event["Action"] == "connect" and event["Actor"]["Attributes"].get("container") in created
    ]


def test_save_remove_load_then_run_a_cell_offline(engine, framework_image, sample_data, tmp_path, cli):
    bundle = tmp_path / "bundle"
    saved = cli(
        "bundle", "save", "--out", str(bundle), "--image", framework_image.tags[0],
        "--with-datasets", "fashion_mnist", "--data-dir", str(sample_data),
    )  # fmt: skip
    assert saved.returncode == 0, saved.stdout + saved.stderr
    (image,) = json.loads((bundle / "manifest.json").read_text())["images"]
    assert image["id"] == framework_image.id
    assert image["versions"]["mxnet"] == "1.9.1" and image["versions"]["numpy"].startswith("1.")

    remove_image(engine, framework_image.id)
    assert on_engine(engine, framework_image.id) is None

    data_dir = tmp_path / "data"
    loaded = cli("bundle", "load", str(bundle), "--data-dir", str(data_dir))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert f"loaded {framework_image.tags[0]}" in loaded.stdout
    assert on_engine(engine, framework_image.tags[0]) == framework_image.id
    data.require("fashion_mnist", data_dir / "fashion_mnist")  # run's pre-flight: there, readable by uid 1000

    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC)
    (cell,) = plan(load_spec(spec_path), spec_path, load_catalog(), Filters(system="cpu"), None)
    cell_dir = tmp_path / "cell"
    since = int(time.time())
    ended = LocalBackend(engine, data_dir.resolve()).run_cell(
        CellTask(
            run_id="bundle-roundtrip",
            cell=cell,
            image_id=framework_image.id,
            cell_dir=cell_dir,
            placement=Placement(),
            timeout_s=300,
        )
    )
    assert ended.exit_code == 0, ended.logs[-3000:]
    result = read_result(cell_dir / "result.json")
    assert isinstance(result, Result) and result.versions["mxnet"] == "1.9.1" and result.train_img_per_s > 0
    assert network_connects(engine, framework_image.id, since) == ["none"]
