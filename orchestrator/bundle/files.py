"""Byte-level helpers for bundles: hash while writing, never leave half a file, show GB progress."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from workloads.files import write_atomically

CHUNK = 4 << 20
OnBytes = Callable[[int], None]


@dataclass(frozen=True)
class Written:
    sha256: str
    size: int


def byte_progress(console: Console) -> Progress:
    """A progress display for transfers of GB: bytes done, speed, time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def read_chunks(path: Path, on_bytes: OnBytes = lambda n: None) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            on_bytes(len(block))
            yield block


def sha256_file(path: Path, on_bytes: OnBytes = lambda n: None) -> str:
    digest = hashlib.sha256()
    for block in read_chunks(path, on_bytes):
        digest.update(block)
    return digest.hexdigest()


def write_stream(chunks: Iterable[bytes], target: Path, on_bytes: OnBytes = lambda n: None) -> Written:
    """Write `chunks` to `target`, hashing on the way; in place only when complete and on disk."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0

    def write(handle: BinaryIO) -> None:
        nonlocal size
        for block in chunks:
            handle.write(block)
            digest.update(block)
            size += len(block)
            on_bytes(len(block))
        handle.flush()
        os.fsync(handle.fileno())

    write_atomically(target, write)
    return Written(digest.hexdigest(), size)


def copy_file(source: Path, target: Path, on_bytes: OnBytes = lambda n: None) -> Written:
    return write_stream(read_chunks(source), target, on_bytes)
