"""`reproduce CELL` without an engine: the stored cell rebuilt from its config (and refused when it does
not rebuild its hash, or its plugin files changed), the image checks (gone, tag moved), the data check,
the host comparison, bad ids."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import docker.errors
import pytest

from orchestrator.analysis import reproduce as again
from orchestrator.cli.main import main
from orchestrator.errors import ExitCode, NotReproducible, UsageError
from orchestrator.run import data
from orchestrator.run.plugins import folder_digest
from orchestrator.status import CellStatus
from orchestrator.store.database import Store
from orchestrator.store.rows import CellRow
from tests.stores import RUN, add_run, cell, row
from tests.unit.run.test_scheduler import BASE

CELL = replace(BASE, max_samples=640, warmup_steps=5, timeout_s=600, memory="4g", options=(("hybridize", True),))


def stored_row(**config) -> CellRow:
    return row(id=7, config={**CELL.to_dict(), **config}, config_hash=CELL.config_hash)


def test_the_stored_config_rebuilds_the_cell():
    assert again.rebuilt_cell(stored_row()) == CELL


def test_a_config_that_does_not_rebuild_its_hash_is_refused():
    with pytest.raises(NotReproducible, match="rebuilds config hash .* not the stored"):
        again.rebuilt_cell(stored_row(batch_size=64))
    with pytest.raises(NotReproducible, match="stored configuration is incomplete"):
        again.rebuilt_cell(row(id=7, config={"system": "cpu"}, config_hash="x"))


def test_a_plugin_folder_that_changed_since_is_refused(tmp_path):
    (tmp_path / "model.py").write_text("MODEL = 1\n")
    plugged = replace(CELL, plugins=(str(tmp_path),), plugin_digests=(folder_digest(tmp_path),))
    stored = row(id=7, config=plugged.to_dict(), config_hash=plugged.config_hash)
    assert again.rebuilt_cell(stored) == plugged
    (tmp_path / "model.py").write_text("MODEL = 2\n")
    with pytest.raises(NotReproducible, match=f"plugin folder {tmp_path} is gone or its files changed since"):
        again.rebuilt_cell(stored)


@dataclass
class FakeImages:
    """`client.images` of the Docker SDK: `get` by tag or id, ImageNotFound when absent."""

    held: dict[str, str]  # tag or id → id

    def get(self, name: str):
        if name not in self.held:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return type("Image", (), {"id": self.held[name]})()


@dataclass
class FakeClient:
    images: FakeImages


ROW = row(id=7, image="benchmatrix/mxnet:1.9.1-cpu", image_id="sha256:aaa", status="ok")


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        ({}, "its image sha256:aaa is gone (no image is tagged benchmatrix/mxnet:1.9.1-cpu any more)"),
        (
            {"benchmatrix/mxnet:1.9.1-cpu": "sha256:bbb", "sha256:bbb": "sha256:bbb"},
            "is gone (the tag benchmatrix/mxnet:1.9.1-cpu now names sha256:bbb)",
        ),
        (
            {"benchmatrix/mxnet:1.9.1-cpu": "sha256:bbb", "sha256:aaa": "sha256:aaa"},
            "the tag benchmatrix/mxnet:1.9.1-cpu now names sha256:bbb, not the stored image sha256:aaa",
        ),
        ({"sha256:aaa": "sha256:aaa"}, "no image is tagged benchmatrix/mxnet:1.9.1-cpu any more, not the stored"),
    ],
)
def test_an_image_that_is_gone_or_whose_tag_moved_is_refused(held, expected):
    with pytest.raises(NotReproducible) as caught:
        again.check_image(FakeClient(FakeImages(held)), ROW)
    assert expected in str(caught.value)
    assert caught.value.exit_code == ExitCode.NOT_REPRODUCIBLE == 10


def test_the_image_the_tag_still_names_is_used():
    held = {"benchmatrix/mxnet:1.9.1-cpu": "sha256:aaa", "sha256:aaa": "sha256:aaa"}
    assert again.check_image(FakeClient(FakeImages(held)), ROW) == "sha256:aaa"
    with pytest.raises(NotReproducible, match="never had an image"):
        again.check_image(FakeClient(FakeImages(held)), replace(ROW, image_id=None, status=CellStatus.ERROR))


def test_data_that_changed_since_is_refused(tmp_path):
    data.sample("fashion_mnist", tmp_path / "fashion_mnist", n_train=20, n_test=5)
    stored = again.StoredCell(row(id=7, data_provenance=again.data_now(CELL, tmp_path)), CELL, RUN, [])
    again.check_data(stored, tmp_path)  # the same folder: accepted
    data.sample("fashion_mnist", tmp_path / "fashion_mnist", n_train=30, n_test=5, force=True)
    with pytest.raises(NotReproducible, match=r"is not what it read then \(files, n differ"):
        again.check_data(stored, tmp_path)
    with pytest.raises(NotReproducible, match="stored no data provenance"):
        again.check_data(again.StoredCell(row(id=7, data_provenance=None), CELL, RUN, []), tmp_path)


def test_every_host_field_is_compared():
    before = {"hostname": "a", "cpu_model": "Xeon", "cores": 2, "kernel": "6.1", "gpus": []}
    now = {**before, "cores": 16, "gpus": [{"name": "H200", "memory_bytes": 141 * 2**30, "driver": "580.1"}]}
    found = {key: (old, new, same) for key, old, new, same in again.host_differences(before, now)}
    assert list(found) == list(again.HOST_FIELDS)
    assert found["cores"] == ("2", "16", False) and found["kernel"] == ("6.1", "6.1", True)
    assert found["gpus"] == ("none", "H200 (141 GiB)", False) and found["driver"] == ("none", "580.1", False)


def test_the_host_compared_against_is_the_one_that_ran_the_cell():
    submit = replace(RUN, host=json.dumps({"backend": "slurm", "submit_host": "login1"}))
    node = {"hostname": "node7", "slurm_node": "node7", "cores": 64}
    assert again.recorded_host(again.StoredCell(row(id=7, host=node), CELL, submit, [])) == node
    machine = {"hostname": "a", "cores": 2}
    local = replace(RUN, host=json.dumps(machine))  # stored before cells recorded their host
    assert again.recorded_host(again.StoredCell(row(id=7, host=None), CELL, local, [])) == machine


def test_the_verdict_places_the_new_figure_in_the_stored_noise():
    stored, new = again.summarize([90.0, 100.0, 110.0]), again.summarize([104.0])
    text = again.Reproduction("r", stored, new, ["ok"], []).verdict
    assert text.startswith("+4.0% against the stored median, inside the stored repeats' range (stored CV 10.0%)")
    assert "outside" in again.Reproduction("r", stored, again.summarize([150.0]), ["ok"], []).verdict
    one = again.Reproduction("r", again.summarize([100.0]), new, ["ok"], []).verdict
    assert one == "+4.0% against the one stored repeat (no stored noise to place it in)"


def test_the_stored_noise_leaves_disturbed_and_failed_repeats_out():
    rows = [
        row(status="ok", metrics={"train_img_per_s": 100.0, "disturbed": 0.0}),
        row(status="ok", metrics={"train_img_per_s": 30.0, "disturbed": 1.0}),  # a burner beside it
        row(status="oom", metrics={}),
        row(status="ok", metrics={"train_img_per_s": 104.0}),
    ]
    assert again.values(rows) == [100.0, 104.0]


def test_unknown_cells_are_bad_input(tmp_path, capsys):
    store = Store(str(tmp_path / "r.db"))
    add_run(store)
    store.record_cell(cell(config=CELL.to_dict(), config_hash=CELL.config_hash))
    with pytest.raises(UsageError, match="no cell 5 in the store .* it holds cell ids 1 to 1"):
        again.load(store, "5")
    assert again.load(store, "1").row.id == 1
    for text, expected in (("5", "no cell 5"), ("last", "expected a cell id")):
        assert main(["reproduce", text, "--store", str(tmp_path / "r.db")]) == ExitCode.USAGE
        assert expected in capsys.readouterr().err
    assert main(["reproduce", "1", "--repeats", "0", "--store", str(tmp_path / "r.db")]) == ExitCode.USAGE
