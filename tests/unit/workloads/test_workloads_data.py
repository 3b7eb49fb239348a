"""Host-side datasets: every name has a sample that its reader loads, fetch verifies and extracts safely."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from orchestrator.errors import BenchmatrixError, UsageError
from orchestrator.run import data
from workloads.datasets import DATASETS as READERS
from workloads.datasets import cifar, open_dataset


def test_the_host_knows_every_dataset_the_workloads_read():
    assert set(data.DATASETS) == set(READERS)
    for name, reader in READERS.items():
        assert data.DATASETS[name].generated is not reader.needs_files, name


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "cifar10", "imagenet"])
def test_each_sample_is_loaded_by_its_reader(tmp_path, name):
    written = data.sample(name, tmp_path / name, n_train=20, n_test=5)
    assert written and all(path.is_file() for path in written)
    parts = open_dataset(name, tmp_path / name)
    assert (len(parts.train), len(parts.test)) == (20, 5)
    tmp_path.chmod(0o755)  # cells read as uid 1000
    data.require(name, tmp_path / name)


def test_generated_datasets_need_no_files(tmp_path):
    assert data.sample("synthetic", tmp_path / "s", n_train=10, n_test=2) == []
    assert data.fetch("synthetic_seq", tmp_path / "s") == []
    data.require("synthetic", tmp_path / "nowhere")
    data.require("none", tmp_path / "nowhere")


def test_require_names_what_is_missing(tmp_path):
    with pytest.raises(UsageError, match=r"dataset imagenet: missing .*train.*data sample imagenet"):
        data.require("imagenet", tmp_path / "imagenet")


def _serve(monkeypatch, name: str, info: data.DatasetInfo) -> None:
    monkeypatch.setitem(data.DATASETS, name, info)


def test_fetch_verifies_and_extracts_only_the_expected_members(monkeypatch, tmp_path):
    source = tmp_path / "batches"
    cifar.write_sample(source, n_train=10, n_test=5)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=f"cifar-10-batches-py/{path.name}")
        evil = tarfile.TarInfo("../../escaped")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    info = dataclasses.replace(data.DATASETS["cifar10"], downloads=(data.Download(archive.as_uri(), digest),))
    _serve(monkeypatch, "cifar10", info)
    target = tmp_path / "data" / "cifar10"
    placed = data.fetch("cifar10", target)
    assert sorted(p.name for p in placed) == sorted(cifar.FILES)
    assert len(open_dataset("cifar10", target).train) == 10
    assert not (tmp_path / "escaped").exists()
    assert not [p.name for p in target.iterdir() if p.name.startswith(".") or p.suffix in (".part", ".tmp")]
    for folder in (tmp_path, tmp_path / "data", target):
        folder.chmod(0o755)
    data.require("cifar10", target)
    assert data.fetch("cifar10", target) == placed  # verified archive present: no download


def test_fetch_refuses_a_file_with_the_wrong_sha256(monkeypatch, tmp_path):
    served = tmp_path / "t10k-labels-idx1-ubyte.gz"
    served.write_bytes(b"tampered")
    info = dataclasses.replace(data.DATASETS["mnist"], downloads=(data.Download(served.as_uri(), "0" * 64),))
    _serve(monkeypatch, "mnist", info)
    with pytest.raises(BenchmatrixError, match="does not match the expected 0000"):
        data.fetch("mnist", tmp_path / "mnist")
    assert list((tmp_path / "mnist").iterdir()) == []


def test_official_checksums_are_pinned():
    assert data.DATASETS["cifar10"].downloads[0].sha256.startswith("6d958be0")
    assert [d.name for d in data.DATASETS["mnist"].downloads] == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


def test_cli_imagenet_cannot_be_fetched_and_says_how_to_get_it(tmp_path, cli):
    done = cli("data", "fetch", "imagenet", "--dir", str(tmp_path / "imagenet"))
    assert done.returncode == 2
    assert "image-net.org" in done.stderr and "train/<class>/*.JPEG" in done.stderr


def test_cli_sample_lists_every_dataset_and_summarises_folders(tmp_path, cli):
    done = cli("data", "sample", "imagenet", "--dir", str(tmp_path / "imagenet"), "--n", "20")
    assert done.returncode == 0, done.stderr
    assert "wrote 16 more files under" in done.stdout  # 20 train + 4 val, 8 shown
    done = cli("data", "sample", "--help")
    assert all(name in done.stdout for name in data.DATASETS)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown dataset 'cifar100'; known: cifar10, fashion_mnist"):
        data.info("cifar100")


def test_missing_files_path_helper(tmp_path: Path):
    assert data.missing_files("cifar10", tmp_path) == [tmp_path / f for f in cifar.FILES]
