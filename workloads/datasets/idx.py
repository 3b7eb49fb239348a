"""Read and write the gzip'd IDX files of MNIST and Fashion-MNIST.

The host imports the writer to make sample data and the containers read it back with
the same module, so both sides agree on the format by construction. Every problem is a
``DatasetError`` that names the file, because the message is all a user sees of a
failed cell.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from workloads.datasets.source import ArraySource, Parts
from workloads.errors import DatasetError  # raised here, and callers catch it from here
from workloads.files import write_atomically

PathLike = Union[str, "os.PathLike[str]"]

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

# IDX type codes (third magic byte); multi-byte types are big-endian on disk.
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True)
class Split:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` uint8 of one split."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def read_idx(path: PathLike, magic: int | None = None) -> np.ndarray:
    """Return the array stored in a gzip'd IDX file, checking header and size.

    ``magic`` is the expected magic number (type code and number of dimensions).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "missing file")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(path, f"not a complete gzip file ({exc})") from exc
    if len(raw) < 4:
        raise DatasetError(path, f"expected a 4-byte IDX magic number, found {len(raw)} bytes")
    (found,) = struct.unpack(">I", raw[:4])
    if magic is not None and found != magic:
        raise DatasetError(path, f"bad magic number 0x{found:08x}, expected 0x{magic:08x}")
    code, ndim = (found >> 8) & 0xFF, found & 0xFF
    if found >> 16 or code not in _DTYPES:
        raise DatasetError(path, f"bad magic number 0x{found:08x}, not an IDX file")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(path, f"truncated header: expected {ndim} dimension sizes")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found_bytes = len(raw) - header
    if found_bytes != expected:
        what = "truncated" if found_bytes < expected else "trailing data"
        raise DatasetError(path, f"{what}: dimensions {list(dims)} need {expected} data bytes, found {found_bytes}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=False)


def read_images(path: PathLike) -> np.ndarray:
    """Read an ``idx3-ubyte`` image file of 28x28 images."""
    images = read_idx(path, IMAGES_MAGIC)
    if images.shape[1:] != IMAGE_SHAPE:
        raise DatasetError(path, f"images are {images.shape[1:]}, expected {IMAGE_SHAPE}")
    return images


def read_labels(path: PathLike) -> np.ndarray:
    """Read an ``idx1-ubyte`` label file of class indices below ``NUM_CLASSES``."""
    labels = read_idx(path, LABELS_MAGIC)
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise DatasetError(path, f"label {int(labels.max())} found, expected 0..{NUM_CLASSES - 1}")
    return labels


def read_split(images_path: PathLike, labels_path: PathLike) -> Split:
    """Read an images/labels pair and check that their counts agree."""
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise DatasetError(
            labels_path,
            f"{len(labels)} labels, expected {len(images)} to match {Path(images_path).name}",
        )
    return Split(images, labels)


def load_idx_dataset(data_dir: PathLike) -> tuple[Split, Split]:
    """Return the (train, test) splits stored under their official names in ``data_dir``."""
    root = Path(data_dir)
    for name in FILES:
        if not (root / name).is_file():
            raise DatasetError(root / name, f"missing dataset file (expected {', '.join(FILES)})")
    train = read_split(root / TRAIN_IMAGES, root / TRAIN_LABELS)
    test = read_split(root / TEST_IMAGES, root / TEST_LABELS)
    return train, test


def open_dataset(name: str, data_dir: PathLike) -> Parts:
    """The reader interface: both splits, images as ``(N, 28, 28, 1)``."""
    train, test = load_idx_dataset(data_dir)
    return Parts(
        train=ArraySource(train.images[..., np.newaxis], train.labels),
        test=ArraySource(test.images[..., np.newaxis], test.labels),
        num_classes=NUM_CLASSES,
    )


def write_idx(path: PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as a gzip'd IDX file, atomically (temp file, then rename)."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in _DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX stores 1 to 255 dimensions, got {array.ndim}")
    code = codes[native]
    header = struct.pack(f">I{array.ndim}I", (code << 8) | array.ndim, *array.shape)

    def write(raw: BinaryIO) -> None:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(header)
            f.write(np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes())

    return write_atomically(Path(path), write)


def write_sample(data_dir: PathLike, n_train: int, n_test: int, seed: int = 0) -> list[Path]:
    """Write a small random dataset in Fashion-MNIST's format and file names.

    Each class is a random prototype image plus noise, so models can learn it and a
    run's accuracy tells whether training worked.
    """
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, size=(NUM_CLASSES, *IMAGE_SHAPE))

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, NUM_CLASSES, size=n).astype(np.uint8)
        noise = rng.integers(0, 256, size=(n, *IMAGE_SHAPE))
        images = (0.25 * prototypes[labels] + 0.75 * noise).astype(np.uint8)
        return images, labels

    train_images, train_labels = split(n_train)
    test_images, test_labels = split(n_test)
    return [
        write_idx(root / TRAIN_IMAGES, train_images),
        write_idx(root / TRAIN_LABELS, train_labels),
        write_idx(root / TEST_IMAGES, test_images),
        write_idx(root / TEST_LABELS, test_labels),
    ]


def to_float(images: np.ndarray) -> np.ndarray:
    """Scale uint8 pixels to float32 in [0, 1], the input every adapter trains on."""
    return images.astype(np.float32) / np.float32(255.0)
