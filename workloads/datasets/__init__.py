"""Framework-free dataset readers and writers (NumPy only, imported on use)."""

from __future__ import annotations

DATASETS = ("fashion_mnist", "mnist")
