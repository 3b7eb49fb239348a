"""ImageNet-style folders: ``train/<class>/*.JPEG`` and, optionally, ``val/<class>/*.JPEG``.

Classes are the sorted folder names under ``train/``. Each image is decoded with Pillow,
converted to RGB, resized so its shorter side is 256 and centre-cropped to 224×224, the
usual ResNet evaluation transform. Decoding happens before the clock starts, for the
samples a run uses only; the result says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from workloads.datasets.source import Parts
from workloads.errors import DatasetError, RequestError
from workloads.files import write_atomically

PathLike = Union[str, "os.PathLike[str]"]

TRAIN = "train"
VALIDATION = "val"
EXTENSIONS = (".jpeg", ".jpg")
RESIZE = 256
CROP = 224


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise RequestError(
            "decoding JPEGs needs Pillow, which this image lacks (add it to its catalog pip list)"
        ) from exc
    return Image


@dataclass(frozen=True)
class FolderSource:
    """JPEG paths and their class indices; ``take`` decodes only the samples asked for."""

    paths: tuple[Path, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.empty((len(indices), CROP, CROP, 3), dtype=np.uint8)
        for row, index in enumerate(indices):
            images[row] = decode(self.paths[index])
        return images, self.labels[indices].astype(np.int64)


def decode(path: Path) -> np.ndarray:
    """One JPEG as uint8 ``(224, 224, 3)``: shorter side to 256, centre crop."""
    image_module = _pil()
    try:
        with image_module.open(path) as image:
            image = image.convert("RGB")
            scale = RESIZE / min(image.size)
            width, height = max(CROP, round(image.width * scale)), max(CROP, round(image.height * scale))
            image = image.resize((width, height), image_module.BILINEAR)
            left, top = (width - CROP) // 2, (height - CROP) // 2
            return np.asarray(image.crop((left, top, left + CROP, top + CROP)), dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(path, f"not a decodable image ({exc})") from exc


def scan(split_dir: Path, classes: list[str] | None = None) -> tuple[FolderSource, list[str]]:
    """List ``split_dir/<class>/*.JPEG``; ``classes`` (from train/) fixes the label of each name."""
    if not split_dir.is_dir():
        raise DatasetError(split_dir, "missing folder (expected <class>/*.JPEG folders in it)")
    found = sorted(entry.name for entry in split_dir.iterdir() if entry.is_dir())
    if not found:
        raise DatasetError(split_dir, "no class folders (expected <class>/*.JPEG)")
    classes = classes or found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DatasetError(split_dir / unknown[0], f"class folder not in {TRAIN}/ ({len(unknown)} such folders)")
    paths: list[Path] = []
    labels: list[int] = []
    for name in found:
        files = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
        if not files:
            raise DatasetError(split_dir / name, f"no {'/'.join(EXTENSIONS)} files in this class folder")
        paths += files
        labels += [classes.index(name)] * len(files)
    return FolderSource(tuple(paths), np.asarray(labels, dtype=np.int64)), classes


def open_dataset(name: str, data_dir: PathLike) -> Parts:
    root = Path(data_dir)
    train, classes = scan(root / TRAIN)
    test = None
    notes = [f"JPEGs decoded, resized to {RESIZE} and centre-cropped to {CROP} before timing (excluded)"]
    if (root / VALIDATION).is_dir():
        test, _ = scan(root / VALIDATION, classes)
    else:
        notes.append(f"no {VALIDATION}/ folder: no test accuracy")
    return Parts(train=train, test=test, num_classes=len(classes), notes=notes)


def write_sample(data_dir: PathLike, n_train: int, n_test: int, seed: int = 0, classes: int = 10) -> list[Path]:
    """A small ImageNet-style folder of real JPEGs of varied sizes, learnable by colour."""
    image_module = _pil()
    root = Path(data_dir)
    rng = np.random.default_rng(seed)
    names = [f"n{index:08d}" for index in range(classes)]
    colours = rng.integers(0, 256, size=(classes, 3))
    written = []
    for split, count in ((TRAIN, n_train), (VALIDATION, n_test)):
        for index in range(count):
            label = index % classes
            folder = root / split / names[label]
            folder.mkdir(parents=True, exist_ok=True)
            height, width = rng.integers(48, 129, size=2)
            noise = rng.integers(0, 256, size=(height, width, 3))
            pixels = (0.5 * colours[label] + 0.5 * noise).astype(np.uint8)
            written.append(_save_jpeg(image_module.fromarray(pixels), folder / f"{names[label]}_{index:06d}.JPEG"))
    return written


def _save_jpeg(image: Any, path: Path) -> Path:
    return write_atomically(path, lambda f: image.save(f, format="JPEG", quality=90))
