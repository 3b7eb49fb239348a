"""Generated datasets: no files, the same samples in every framework and container.

``synthetic`` is seed 000's (from keras-mxnet's benchmark): 1000 images of 256×256×3
uniform random bytes in 1000 classes, labels random too, so only throughput means anything.
``synthetic_seq`` is learnable: each class is a random prototype sequence plus noise.
Each sample is generated from its own seeded generator, so a capped run generates only
what it uses and still sees the same samples as an uncapped one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from workloads.datasets.provenance import Kind, Provenance
from workloads.datasets.source import Parts

DATA_SEED = 20190729  # fixed: the data must not change with a run's --seed
IMAGE_SHAPE = (256, 256, 3)
IMAGE_CLASSES = 1000
IMAGE_SAMPLES = (1000, 200)
SEQUENCE_SHAPE = (64, 32)
SEQUENCE_CLASSES = 10
SEQUENCE_SAMPLES = (10000, 2000)


@dataclass(frozen=True)
class RandomImages:
    size: int
    split: int

    def __len__(self) -> int:
        return self.size

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.empty((len(indices), *IMAGE_SHAPE), dtype=np.uint8)
        labels = np.empty(len(indices), dtype=np.int64)
        for row, index in enumerate(indices):
            rng = np.random.default_rng((DATA_SEED, self.split, int(index)))
            labels[row] = rng.integers(0, IMAGE_CLASSES)
            images[row] = rng.integers(0, 256, size=IMAGE_SHAPE, dtype=np.uint8)
        return images, labels


@dataclass(frozen=True)
class PrototypeSequences:
    size: int
    split: int

    def __len__(self) -> int:
        return self.size

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prototypes = np.random.default_rng(DATA_SEED).standard_normal((SEQUENCE_CLASSES, *SEQUENCE_SHAPE))
        sequences = np.empty((len(indices), *SEQUENCE_SHAPE), dtype=np.float32)
        labels = np.empty(len(indices), dtype=np.int64)
        for row, index in enumerate(indices):
            rng = np.random.default_rng((DATA_SEED, self.split, int(index)))
            labels[row] = rng.integers(0, SEQUENCE_CLASSES)
            sequences[row] = 0.5 * prototypes[labels[row]] + rng.standard_normal(SEQUENCE_SHAPE)
        return sequences, labels


def open_dataset(name: str, train_samples: Optional[int] = None) -> Parts:
    """The generated dataset ``name``, with ``train_samples`` training samples (default: its own count)."""
    if name == "synthetic_seq":
        train_size, test_size = SEQUENCE_SAMPLES
        train = PrototypeSequences(train_samples or train_size, 0)
        notes = [f"generated sequences (no files): {len(train)} training samples"]
        return Parts(train=train, test=PrototypeSequences(test_size, 1), num_classes=SEQUENCE_CLASSES, notes=notes)
    train_size, test_size = IMAGE_SAMPLES
    images = RandomImages(train_samples or train_size, 0)
    notes = [
        f"generated random images and labels (seed 000's synthetic data, {len(images)} training images): "
        "accuracy is meaningless"
    ]
    return Parts(train=images, test=RandomImages(test_size, 1), num_classes=IMAGE_CLASSES, notes=notes)


def provenance(name: str, train_samples: Optional[int] = None) -> Provenance:
    """Generated in the cell from the fixed data seed: what a result says of where its data came from."""
    train_size, test_size = SEQUENCE_SAMPLES if name == "synthetic_seq" else IMAGE_SAMPLES
    return Provenance(Kind.GENERATED, seed=DATA_SEED, n=train_samples or train_size, n_test=test_size)
