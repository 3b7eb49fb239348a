"""IDX reader/writer: round trip, and every malformed file named in its DatasetError."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from workloads.datasets.idx import (
    FILES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DatasetError,
    load_idx_dataset,
    read_idx,
    read_images,
    read_labels,
    to_float,
    write_idx,
    write_sample,
)


def _write_raw(path: Path, payload: bytes) -> Path:
    with gzip.open(path, "wb") as f:
        f.write(payload)
    return path


def test_write_read_round_trip(tmp_path: Path) -> None:
    images = np.random.default_rng(1).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    np.testing.assert_array_equal(read_images(write_idx(tmp_path / "i.gz", images)), images)
    np.testing.assert_array_equal(read_labels(write_idx(tmp_path / "l.gz", labels)), labels)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip_other_idx_types(tmp_path: Path, dtype: type) -> None:
    array = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    back = read_idx(write_idx(tmp_path / "a.gz", array))
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_header_is_the_official_format(tmp_path: Path) -> None:
    write_idx(tmp_path / "i.gz", np.zeros((3, 28, 28), dtype=np.uint8))
    raw = gzip.decompress((tmp_path / "i.gz").read_bytes())
    assert struct.unpack(">IIII", raw[:16]) == (0x00000803, 3, 28, 28)
    assert len(raw) == 16 + 3 * 28 * 28


def test_write_sample_makes_a_loadable_dataset(tmp_path: Path) -> None:
    paths = write_sample(tmp_path, n_train=50, n_test=20, seed=3)
    assert sorted(p.name for p in paths) == sorted(FILES)
    train, test = load_idx_dataset(tmp_path)
    assert (len(train), len(test)) == (50, 20)
    assert train.images.shape == (50, 28, 28) and train.images.dtype == np.uint8
    assert set(np.unique(train.labels)) <= set(range(10))
    write_sample(tmp_path / "again", n_train=50, n_test=20, seed=3)
    again, _ = load_idx_dataset(tmp_path / "again")
    np.testing.assert_array_equal(again.images, train.images)


def test_to_float_scales_to_unit_interval() -> None:
    x = to_float(np.array([[0, 255, 51]], dtype=np.uint8))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [[0.0, 1.0, 0.2]])


def test_bad_magic_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DatasetError, match="bad magic number 0x00000801, expected 0x00000803") as err:
        read_images(path)
    assert err.value.path == str(path)
    assert str(path) in str(err.value)


def test_not_idx_at_all(tmp_path: Path) -> None:
    path = _write_raw(tmp_path / "junk.gz", b"<html>not a dataset</html>")
    with pytest.raises(DatasetError, match="junk.gz: bad magic number"):
        read_idx(path)


def test_truncated_data_names_the_file(tmp_path: Path) -> None:
    header = struct.pack(">IIII", 0x00000803, 10, 28, 28)
    path = _write_raw(tmp_path / TRAIN_IMAGES, header + bytes(9 * 28 * 28))
    expected = r"truncated: dimensions \[10, 28, 28\] need 7840 data bytes, found 7056"
    with pytest.raises(DatasetError, match=expected):
        read_images(path)


def test_truncated_gzip_stream_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / TRAIN_IMAGES, np.ones((10, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DatasetError, match="not a complete gzip file") as err:
        read_images(path)
    assert err.value.path == str(path)


def test_trailing_bytes_are_refused(tmp_path: Path) -> None:
    path = _write_raw(tmp_path / "l.gz", struct.pack(">II", 0x00000801, 2) + bytes(3))
    with pytest.raises(DatasetError, match="trailing data"):
        read_labels(path)


def test_wrong_image_size(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "i.gz", np.zeros((2, 32, 32), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"i.gz: images are \(32, 32\), expected \(28, 28\)"):
        read_images(path)


def test_label_out_of_range(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "l.gz", np.array([0, 10], dtype=np.uint8))
    with pytest.raises(DatasetError, match="l.gz: label 10 found"):
        read_labels(path)


def test_label_count_mismatch_names_the_label_file(tmp_path: Path) -> None:
    write_sample(tmp_path, n_train=30, n_test=10)
    write_idx(tmp_path / TRAIN_LABELS, np.zeros(29, dtype=np.uint8))
    with pytest.raises(DatasetError, match=f"{TRAIN_LABELS}: 29 labels, expected 30 to match {TRAIN_IMAGES}"):
        load_idx_dataset(tmp_path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    write_sample(tmp_path, n_train=30, n_test=10)
    (tmp_path / TEST_LABELS).unlink()
    with pytest.raises(DatasetError, match=f"{TEST_LABELS}: missing dataset file") as err:
        load_idx_dataset(tmp_path)
    assert err.value.path == str(tmp_path / TEST_LABELS)


def test_unsupported_dtype_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot store dtype"):
        write_idx(tmp_path / "x.gz", np.zeros(3, dtype=np.uint16))
    assert list(tmp_path.iterdir()) == []
