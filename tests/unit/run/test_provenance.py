"""Data provenance: `data fetch` and `data sample` record where a folder's files came from, a cell
vouches for it only while the files are unchanged, and the stored cell carries it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from orchestrator.run import data
from orchestrator.store.database import Store
from tests.stores import add_run, cell
from workloads.contract import Training
from workloads.datasets import idx, provenance
from workloads.datasets.provenance import PROVENANCE_FILE, Kind, Provenance
from workloads.datasets.synthetic import DATA_SEED
from workloads.run import data_provenance


def _serve_idx(monkeypatch, tmp_path: Path) -> Path:
    """Fashion-MNIST's four downloads served from local files, their sha256 published as the real ones are."""
    served = tmp_path / "served"
    idx.write_sample(served, n_train=20, n_test=5)
    downloads = tuple(
        data.Download((served / name).as_uri(), hashlib.sha256((served / name).read_bytes()).hexdigest())
        for name in idx.FILES
    )
    monkeypatch.setitem(
        data.DATASETS, "fashion_mnist", dataclasses.replace(data.DATASETS["fashion_mnist"], downloads=downloads)
    )
    return served


def test_fetch_records_official_files_with_their_published_sha256(monkeypatch, tmp_path):
    _serve_idx(monkeypatch, tmp_path)
    target = tmp_path / "fashion_mnist"
    data.fetch("fashion_mnist", target)
    found = provenance.read("idx", target)
    published = {d.name: d.sha256 for d in data.DATASETS["fashion_mnist"].downloads}
    assert found.kind is Kind.OFFICIAL
    assert found.verified == published and found.files == published
    assert json.loads((target / PROVENANCE_FILE).read_text())["schema"] == provenance.SCHEMA
    assert (target / PROVENANCE_FILE).stat().st_mode & 0o004  # cells (uid 1000) read it


def test_sample_records_generated_with_seed_and_n(tmp_path):
    target = tmp_path / "fashion_mnist"
    data.sample("fashion_mnist", target, n_train=30, n_test=6, seed=4)
    found = provenance.read("idx", target)
    assert (found.kind, found.seed, found.n, found.n_test) == (Kind.GENERATED, 4, 30, 6)
    assert set(found.files) == set(idx.FILES)


def test_a_sample_over_official_files_is_no_longer_official(monkeypatch, tmp_path):
    _serve_idx(monkeypatch, tmp_path)
    target = tmp_path / "fashion_mnist"
    data.fetch("fashion_mnist", target)
    data.sample("fashion_mnist", target, n_train=10, n_test=2, force=True)  # replacing them takes --force
    assert provenance.read("idx", target).kind is Kind.GENERATED


def test_a_file_changed_since_is_reported_as_user_naming_it(monkeypatch, tmp_path):
    _serve_idx(monkeypatch, tmp_path)
    target = tmp_path / "fashion_mnist"
    data.fetch("fashion_mnist", target)
    idx.write_idx(target / idx.TRAIN_LABELS, (idx.read_idx(target / idx.TRAIN_LABELS) + 1) % 10)
    found = provenance.read("idx", target)
    assert found.kind is Kind.USER
    assert f"says official, but {idx.TRAIN_LABELS} changed since" in found.note
    assert found.files[idx.TRAIN_LABELS] == hashlib.sha256((target / idx.TRAIN_LABELS).read_bytes()).hexdigest()


def test_a_folder_without_provenance_is_user_with_its_files_sha256(tmp_path):
    idx.write_sample(tmp_path, n_train=10, n_test=2)
    found = provenance.read("idx", tmp_path)
    assert found.kind is Kind.USER and "no PROVENANCE.json" in found.note
    assert found.files == {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in idx.FILES}


def test_an_unreadable_provenance_file_vouches_for_nothing(tmp_path):
    data.sample("fashion_mnist", tmp_path, n_train=10, n_test=2)
    (tmp_path / PROVENANCE_FILE).write_text('{"schema": "benchmatrix.provenance/1", "kind": "divine"}')
    found = provenance.read("idx", tmp_path)
    assert found.kind is Kind.USER and "unreadable" in found.note


def test_an_image_folder_is_listed_not_hashed(tmp_path):
    data.sample("imagenet", tmp_path, n_train=4, n_test=2)
    found = provenance.read("imagefolder", tmp_path)
    assert found.kind is Kind.GENERATED and found.files == {"train": None, "val": None}


def test_generated_datasets_say_generated_with_the_data_seed():
    found = data_provenance(Training("pytorch", "mlp", "synthetic", generated_samples=64), None)
    assert (found.kind, found.seed, found.n) == (Kind.GENERATED, DATA_SEED, 64)
    assert data_provenance(Training("pytorch", "lstm", "synthetic_seq"), None).n == 10_000


def test_round_trip_through_a_dict_and_the_store(tmp_path):
    found = Provenance(Kind.OFFICIAL, {"a": "1" * 64, "train": None}, {"a.tar.gz": "2" * 64})
    assert Provenance.from_dict(found.to_dict()) == found
    store = Store(str(tmp_path / "results.db"))
    add_run(store)
    store.record_cells([cell(data_provenance=found.to_dict()), cell(config_hash="other")])
    stored = {row.config_hash: row.data_provenance for row in store.cell_rows("run1")}
    assert stored == {"cfg": found.to_dict(), "other": None}
