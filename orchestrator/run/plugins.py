"""Model plugins on the host: their content digest (a cell's identity) and what they register (learned in a container).

A plugin folder enters a cell's `config_hash` by the sha256 of its files, never by where the
checkout is: the same spec from two checkouts pairs and resumes, an edited model does not.
What a plugin registers is learned by a `Discoverer`, which runs the workloads' discovery
inside a hardened container of the framework's image (`orchestrator.backends.discovery`):
code a spec names never runs in the orchestrator's process. Discoveries are cached by the
plugins' digests, so `plan` starts no container for plugins it has seen.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Optional, Protocol

from workloads.discover import model_infos
from workloads.files import write_atomically
from workloads.models import ModelInfo

# Bump when what a discovery returns changes meaning: older cache entries are then not read.
DISCOVERY_SCHEMA = 1
SKIPPED_PARTS = frozenset({"__pycache__"})  # written by an import, not part of the plugin


@dataclass(frozen=True)
class PluginFolder:
    """One plugin folder of a spec: where it is on this host (mounted) and what it holds (hashed)."""

    path: Path
    digest: str


def folder_digest(folder: Path) -> str:
    """sha256 of the folder's files: each relative name (sorted, '/'-separated) and its bytes."""
    digest = hashlib.sha256()
    files = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not SKIPPED_PARTS & set(path.relative_to(folder).parts)
    )
    for name in files:
        data = (folder / name).read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


class Discoverer(Protocol):
    def __call__(self, framework: str, images: tuple[str, ...], folders: tuple[PluginFolder, ...]) -> list[ModelInfo]:
        """The models `folders` register under `framework` (run in one of its `images`, in order of preference).

        Raises a SpecError keyed `plugins.<index>` when a folder fails to import.
        """
        ...


def cache_dir() -> Path:
    """Where discoveries are kept: $BENCHMATRIX_CACHE, else $XDG_CACHE_HOME/benchmatrix, else ~/.cache/benchmatrix."""
    given = os.environ.get("BENCHMATRIX_CACHE")
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "benchmatrix"


def cache_path(framework: str, folders: tuple[PluginFolder, ...], root: Optional[Path] = None) -> Path:
    """The cache file of one discovery: keyed by content (framework and digests), never by a path."""
    key = json.dumps([DISCOVERY_SCHEMA, framework, [folder.digest for folder in folders]])
    return (root or cache_dir()) / "plugins" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def read_cached(path: Path) -> Optional[list[ModelInfo]]:
    """A cached discovery, or None when there is none (or it cannot be read: it is then made again)."""
    try:
        return model_infos(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_cached(path: Path, found: dict[str, Any]) -> None:
    """Keep a discovery (the object the container printed); one that cannot be written only costs a container."""
    data = json.dumps(found, sort_keys=True).encode()

    def write(handle: BinaryIO) -> None:
        handle.write(data)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, write)
    except OSError:
        pass
