"""Sources read samples by index; ``Parts`` is what a reader returns for one dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol

import numpy as np


class Source(Protocol):
    def __len__(self) -> int: ...

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Samples and int64 labels at ``indices``, in that order."""


@dataclass(frozen=True)
class ArraySource:
    """A split already in memory (IDX, CIFAR batches, generated sequences)."""

    samples: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.samples[indices], self.labels[indices].astype(np.int64)


@dataclass
class Parts:
    train: Source
    test: Optional[Source]
    num_classes: int
    notes: list[str] = field(default_factory=list)
