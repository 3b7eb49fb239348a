"""Framework-free dataset readers and writers, imported on use (NumPy; Pillow for JPEGs).

Every reader opens a dataset as ``Parts``: a training ``Source``, an optional test
``Source`` and the number of classes. A ``Source`` reads only the samples asked for, so a
capped run on an ImageNet folder decodes only the JPEGs it trains on. Images come back as
uint8 ``(N, H, W, C)``, sequences as float32 ``(N, T, F)``, labels as int64 ``(N,)``.
Nothing is ever downloaded here: datasets are mounted read-only into the containers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from workloads.datasets.source import Parts


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset name: its reader module, what it holds and the split the seeds used."""

    reader: str
    kind: str
    description: str
    validation_fraction: float = 0.0
    needs_files: bool = True


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec("idx", "image", "Fashion-MNIST, gzip'd IDX: 60k train, 10k test, 28×28×1"),
    "mnist": DatasetSpec(
        "idx",
        "image",
        "MNIST, gzip'd IDX; seed 002's split: 80% train (48k), 20% validation (12k), 10k test",
        validation_fraction=0.2,
    ),
    "cifar10": DatasetSpec("cifar", "image", "CIFAR-10 'python' pickle batches: 50k train, 10k test, 32×32×3"),
    "imagenet": DatasetSpec(
        "imagefolder", "image", "ImageNet-style train/<class>/*.JPEG (+ val/<class>/), resized to 256, centre 224"
    ),
    "synthetic": DatasetSpec(
        "synthetic",
        "image",
        "seed 000's synthetic data: 1000 random 256×256×3 images in 1000 classes (generated, no files)",
        needs_files=False,
    ),
    "synthetic_seq": DatasetSpec(
        "synthetic",
        "sequence",
        "10k sequences of 64 steps × 32 features, 10 classes (generated, no files)",
        needs_files=False,
    ),
}


def spec(name: str) -> DatasetSpec:
    from workloads.errors import RequestError

    if name not in DATASETS:
        raise RequestError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def open_dataset(name: str, data_dir: Optional[Path], generated_samples: Optional[int] = None) -> Parts:
    """Open ``name`` stored in ``data_dir`` (ignored for generated datasets, which have
    ``generated_samples`` training samples when it is given)."""
    from workloads.errors import RequestError

    dataset = spec(name)
    if dataset.needs_files and data_dir is None:
        raise RequestError(f"dataset {name} is read from files: give --data-dir")
    module = importlib.import_module(f"{__name__}.{dataset.reader}")
    if not dataset.needs_files:
        return module.open_dataset(name, generated_samples)
    return module.open_dataset(name, data_dir)
