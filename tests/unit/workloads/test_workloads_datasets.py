"""CIFAR-10, image-folder and generated readers: round trips, selection rules, and every malformed file named."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from workloads.datasets import DATASETS, cifar, imagefolder, open_dataset, selection
from workloads.datasets.selection import select
from workloads.datasets.synthetic import IMAGE_SHAPE, SEQUENCE_SHAPE
from workloads.errors import DatasetError, RequestError


@pytest.fixture
def cifar_dir(tmp_path: Path) -> Path:
    cifar.write_sample(tmp_path / "cifar10", n_train=60, n_test=12, seed=1)
    return tmp_path / "cifar10"


def test_cifar_round_trip_keeps_pixels_and_layout(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 3, 9, 1, 2])
    path = cifar.write_batch(tmp_path / "data_batch_1", images, labels, "one")
    back, back_labels = cifar.read_batch(path)
    np.testing.assert_array_equal(back, images)
    np.testing.assert_array_equal(back_labels, labels)
    raw = pickle.loads(path.read_bytes(), encoding="bytes")
    # The official layout: channel-major rows, the first 1024 values are the red plane.
    np.testing.assert_array_equal(raw[b"data"][1, :1024], images[1, :, :, 0].reshape(-1))


def test_cifar_sample_is_a_complete_dataset(cifar_dir: Path) -> None:
    assert sorted(p.name for p in cifar_dir.iterdir()) == sorted(cifar.FILES)
    parts = open_dataset("cifar10", cifar_dir)
    assert (len(parts.train), len(parts.test), parts.num_classes) == (60, 12, 10)


def _dump(path: Path, value: object) -> Path:
    path.write_bytes(pickle.dumps(value, protocol=2))
    return path


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a pickle at all", "not a complete CIFAR-10 python batch"),
        ({b"data": np.zeros((3, 3072), np.uint8), b"labels": [1, 2]}, "2 labels for 3 images"),
        ({b"data": np.zeros((3, 100), np.uint8), b"labels": [1, 2, 3]}, "b'data' is uint8 (3, 100), expected"),
        ({b"labels": [1]}, "missing key b'data'"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, "label 10 found, expected 0..9"),
        ([1, 2, 3], "expected a pickled dict, found list"),
    ],
)
def test_malformed_cifar_batches_name_the_file(tmp_path: Path, content: object, problem: str) -> None:
    path = tmp_path / "data_batch_1"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        _dump(path, content)
    with pytest.raises(DatasetError, match=re.escape(problem)) as caught:
        cifar.read_batch(path)
    assert caught.value.path == str(path)


def test_truncated_cifar_batch_names_the_file(cifar_dir: Path) -> None:
    path = cifar_dir / "data_batch_2"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DatasetError, match="not a complete CIFAR-10 python batch") as caught:
        open_dataset("cifar10", cifar_dir)
    assert caught.value.path == str(path)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_that_runs_code_is_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran"
    path = _dump(tmp_path / "test_batch", {b"data": _Exploit(marker), b"labels": []})
    with pytest.raises(DatasetError, match="refusing to load posix.mkdir"):
        cifar.read_batch(path)
    assert not marker.exists()


def test_missing_cifar_file_lists_the_expected_names(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="data_batch_1: missing file .*test_batch"):
        open_dataset("cifar10", tmp_path)


def test_image_folder_round_trip(tmp_path: Path) -> None:
    imagefolder.write_sample(tmp_path, n_train=12, n_test=4, seed=0, classes=3)
    parts = open_dataset("imagenet", tmp_path)
    assert (len(parts.train), len(parts.test), parts.num_classes) == (12, 4, 3)
    images, labels = parts.train.take(np.array([0, 5]))
    assert images.shape == (2, 224, 224, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 1]  # sorted class folders, sorted files
    assert "decoded" in parts.notes[0]


def test_image_folder_without_val_has_no_test_split(tmp_path: Path) -> None:
    imagefolder.write_sample(tmp_path, n_train=4, n_test=0, seed=0, classes=2)
    parts = open_dataset("imagenet", tmp_path)
    assert parts.test is None and "no val/ folder" in parts.notes[-1]


def test_image_folder_problems_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="train: missing folder") as caught:
        open_dataset("imagenet", tmp_path)
    assert caught.value.path == str(tmp_path / "train")
    (tmp_path / "train" / "n1").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no .jpeg/.jpg files") as caught:
        open_dataset("imagenet", tmp_path)
    assert caught.value.path == str(tmp_path / "train" / "n1")
    bad = tmp_path / "train" / "n1" / "broken.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    parts = open_dataset("imagenet", tmp_path)
    with pytest.raises(DatasetError, match="not a decodable image") as caught:
        parts.train.take(np.array([0]))
    assert caught.value.path == str(bad)


def test_validation_class_must_exist_in_train(tmp_path: Path) -> None:
    imagefolder.write_sample(tmp_path, n_train=2, n_test=2, seed=0, classes=2)
    (tmp_path / "val" / "stranger").mkdir()
    with pytest.raises(DatasetError, match="class folder not in train/") as caught:
        open_dataset("imagenet", tmp_path)
    assert caught.value.path == str(tmp_path / "val" / "stranger")


def test_generated_datasets_are_the_same_whatever_the_cap() -> None:
    capped = select("synthetic", None, 3, seed=5)
    wider = select("synthetic", None, 7, seed=5)
    assert capped.x_train.shape == (3, *IMAGE_SHAPE) and capped.num_classes == 1000
    np.testing.assert_array_equal(capped.x_train, wider.x_train[:3])
    sequences = select("synthetic_seq", None, 4, seed=0)
    assert sequences.x_train.shape == (4, *SEQUENCE_SHAPE) and sequences.kind == "sequence"
    assert sequences.x_train.dtype == np.float32


def test_selection_caps_after_a_seeded_shuffle(cifar_dir: Path) -> None:
    parts = open_dataset("cifar10", cifar_dir)
    chosen = select("cifar10", cifar_dir, 10, seed=3)
    order = np.random.default_rng(3).permutation(60)[:10]
    expected, labels = parts.train.take(order)
    np.testing.assert_allclose(chosen.x_train, expected / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(chosen.y_train, labels)
    assert chosen.validation is None and chosen.test[0].shape == (12, 32, 32, 3)


def test_a_training_cap_is_noted_only_where_it_leaves_samples_out() -> None:
    capped = select("synthetic_seq", None, 30, seed=0, generated_samples=50)
    assert "capped at 30 training samples per epoch (of 50)" in capped.notes
    uncapped = select("synthetic_seq", None, 100, seed=0, generated_samples=50)
    assert not any(note.startswith("capped at") for note in uncapped.notes)


def test_evaluation_split_is_capped_by_memory(monkeypatch: pytest.MonkeyPatch, cifar_dir: Path) -> None:
    monkeypatch.setattr(selection, "EVAL_BYTES", 5 * 32 * 32 * 3 * 4)
    chosen = select("cifar10", cifar_dir, None, seed=0)
    assert len(chosen.test[1]) == 5
    assert "test split capped at 5 of 12 samples (memory)" in chosen.notes


def test_a_training_split_too_big_for_memory_says_which_cap_fits(
    monkeypatch: pytest.MonkeyPatch, cifar_dir: Path
) -> None:
    monkeypatch.setattr(selection, "TRAIN_BYTES", 20 * 32 * 32 * 3 * 4)
    with pytest.raises(RequestError, match="set max_samples to at most 20"):
        select("cifar10", cifar_dir, None, seed=0)


def test_file_datasets_need_a_folder() -> None:
    with pytest.raises(RequestError, match="dataset cifar10 is read from files: give --data-dir"):
        open_dataset("cifar10", None)
    assert not DATASETS["synthetic"].needs_files and DATASETS["mnist"].validation_fraction == 0.2
