"""Read and write CIFAR-10's "python version": pickled batches of 32×32×3 images.

The official files are Python 2 pickles of a dict with ``b"data"`` (an ``(N, 3072)`` uint8
array, channel-major rows: 1024 red, 1024 green, 1024 blue values) and ``b"labels"``. A
pickle can run any code when loaded, so the reader allows only the NumPy array classes
such a batch holds and refuses anything else, naming the file.
"""

from __future__ import annotations

import codecs
import os
import pickle
from pathlib import Path
from typing import Any, Union

import numpy as np

from workloads.datasets.source import ArraySource, Parts
from workloads.errors import DatasetError
from workloads.files import write_atomically

PathLike = Union[str, "os.PathLike[str]"]

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
FILES = (*TRAIN_BATCHES, TEST_BATCH, META)
IMAGE_SHAPE = (32, 32, 3)
ROW = 32 * 32 * 3
NUM_CLASSES = 10
LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# NumPy ≥ 2 pickles name ``numpy._core``, older NumPy ``numpy.core``: accept both, bind to this NumPy.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_SCALAR = np.float64(0).__reduce__()[0]
_ALLOWED = {
    **{(f"{core}.multiarray", "_reconstruct"): _RECONSTRUCT for core in ("numpy.core", "numpy._core")},
    **{(f"{core}.multiarray", "scalar"): _SCALAR for core in ("numpy.core", "numpy._core")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes in a protocol-2 pickle
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays and lists")


def read_batch(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 32, 32, 3)`` uint8 and labels ``(N,)`` of one batch file, checked."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, f"missing file (expected {', '.join(FILES)})")
    try:
        with path.open("rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DatasetError(path, f"not a complete CIFAR-10 python batch ({type(exc).__name__}: {exc})") from exc
    if not isinstance(batch, dict):
        raise DatasetError(path, f"expected a pickled dict, found {type(batch).__name__}")
    for key in (b"data", b"labels"):
        if key not in batch:
            raise DatasetError(path, f"missing key {key!r} (found {sorted(batch)})")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(path, f"b'data' is {found}, expected uint8 (N, {ROW})")
    if labels.shape != (len(data),):
        raise DatasetError(path, f"{labels.size} labels for {len(data)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DatasetError(path, f"label {int(labels.max())} found, expected 0..{NUM_CLASSES - 1}")
    images = data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def open_dataset(name: str, data_dir: PathLike) -> Parts:
    root = Path(data_dir)
    batches = [read_batch(root / batch) for batch in TRAIN_BATCHES]
    test_images, test_labels = read_batch(root / TEST_BATCH)
    return Parts(
        train=ArraySource(np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])),
        test=ArraySource(test_images, test_labels),
        num_classes=NUM_CLASSES,
    )


def write_batch(path: PathLike, images: np.ndarray, labels: np.ndarray, label: str) -> Path:
    """Write one batch in the official layout, atomically."""
    rows = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), ROW).astype(np.uint8)
    batch = {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": rows,
        b"filenames": [f"sample_{i:05d}.png".encode() for i in range(len(labels))],
    }
    return _write_pickle(Path(path), batch)


def _write_pickle(path: Path, value: Any) -> Path:
    return write_atomically(path, lambda f: pickle.dump(value, f, protocol=2))


def write_sample(data_dir: PathLike, n_train: int, n_test: int, seed: int = 0) -> list[Path]:
    """A small CIFAR-10 in the official file names: class prototypes plus noise, learnable."""
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, size=(NUM_CLASSES, *IMAGE_SHAPE))

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, NUM_CLASSES, size=n)
        noise = rng.integers(0, 256, size=(n, *IMAGE_SHAPE))
        return (0.4 * prototypes[labels] + 0.6 * noise).astype(np.uint8), labels

    written = []
    for index, part in enumerate(np.array_split(np.arange(n_train), len(TRAIN_BATCHES))):
        images, labels = split(len(part))
        written.append(write_batch(root / TRAIN_BATCHES[index], images, labels, f"training batch {index + 1} of 5"))
    written.append(write_batch(root / TEST_BATCH, *split(n_test), "testing batch 1 of 1"))
    meta = {b"label_names": [n.encode() for n in LABEL_NAMES], b"num_cases_per_batch": 10000, b"num_vis": ROW}
    written.append(_write_pickle(root / META, meta))
    return written
