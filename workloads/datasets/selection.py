"""Which samples a run trains and evaluates on, read into memory as float32 before timing.

The training split is a seeded shuffle (the cell's repeat is the seed), so every framework
sees the same samples; a dataset with a validation fraction (MNIST: seed 002's 48k/12k)
holds out the shuffle's tail, and ``max_samples`` caps what is left. Evaluation splits are
capped by memory (``EVAL_BYTES``) and a training split that cannot fit is refused with the
cap to use, so nothing is ever decoded lazily while the clock runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from workloads.datasets import open_dataset, spec
from workloads.datasets.source import Source
from workloads.errors import RequestError

EVAL_BYTES = 256 * 2**20
TRAIN_BYTES = 3 * 2**30


@dataclass
class Selected:
    """Float32 samples (images scaled to [0, 1], NHWC) and int64 labels of each split."""

    kind: str
    num_classes: int
    x_train: np.ndarray
    y_train: np.ndarray
    validation: Optional[tuple[np.ndarray, np.ndarray]]
    test: Optional[tuple[np.ndarray, np.ndarray]]
    notes: list[str] = field(default_factory=list)


def to_float(samples: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]; float data (sequences) unchanged."""
    if samples.dtype == np.uint8:
        return samples.astype(np.float32) / np.float32(255.0)
    return samples.astype(np.float32, copy=False)


class TooManySamples(RequestError):
    """The training split would not fit the in-memory cap; ``fits`` is the most samples that do."""

    def __init__(self, dataset: str, samples: int, shape: tuple[int, ...], sample_bytes: int) -> None:
        self.fits = TRAIN_BYTES // sample_bytes
        gib = samples * sample_bytes / 2**30
        self.need = f"dataset {dataset}: {samples} training samples of {shape} need {gib:.1f} GiB in memory"
        super().__init__(f"{self.need}; set max_samples to at most {self.fits}")


def select(
    name: str,
    data_dir: Optional[os.PathLike[str] | str],
    max_samples: Optional[int],
    seed: int,
    generated_samples: Optional[int] = None,
) -> Selected:
    dataset = spec(name)
    if generated_samples is not None and dataset.needs_files:
        raise RequestError(
            f"--generated-samples applies to generated datasets only, not to {name} (read from files): "
            "use --max-samples to cap it"
        )
    parts = open_dataset(name, Path(data_dir) if data_dir is not None else None, generated_samples)
    total = len(parts.train)
    order = np.random.default_rng(seed).permutation(total)
    held_out = int(round(total * dataset.validation_fraction))
    train_indices = order[: total - held_out][:max_samples]
    if len(train_indices) == 0:
        raise RequestError(f"dataset {name}: the training split is empty")
    first, _ = parts.train.take(train_indices[:1])
    sample_bytes = first[0].size * 4
    if len(train_indices) * sample_bytes > TRAIN_BYTES:
        raise TooManySamples(name, len(train_indices), first.shape[1:], sample_bytes)
    x_train, y_train = parts.train.take(train_indices)
    notes = list(parts.notes)
    available = total - held_out
    if max_samples is not None and max_samples < available:
        notes.append(f"capped at {max_samples} training samples per epoch (of {available})")
    eval_cap = max(1, EVAL_BYTES // sample_bytes)
    validation = None
    if held_out:
        validation = _evaluation(parts.train, order[total - held_out :], eval_cap, "validation", notes)
        notes.append(f"validation: {held_out} of {total} training samples held out (seeded), not trained on")
    test = None
    if parts.test is not None:
        test = _evaluation(parts.test, np.arange(len(parts.test)), eval_cap, "test", notes)
    return Selected(
        kind=dataset.kind,
        num_classes=parts.num_classes,
        x_train=to_float(x_train),
        y_train=y_train,
        validation=validation,
        test=test,
        notes=notes,
    )


def _evaluation(
    source: Source, indices: np.ndarray, cap: int, split: str, notes: list[str]
) -> Optional[tuple[np.ndarray, np.ndarray]]:
    if len(indices) == 0:
        return None
    if len(indices) > cap:
        notes.append(f"{split} split capped at {cap} of {len(indices)} samples (memory)")
        indices = indices[:cap]
    samples, labels = source.take(indices)
    return to_float(samples), labels
