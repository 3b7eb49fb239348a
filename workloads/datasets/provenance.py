"""Where a dataset's data came from: the ``data_provenance`` of a result, so a stored number can be cited.

``data fetch`` (files verified against their published sha256) and ``data sample`` (a seeded
generator) write ``PROVENANCE.json`` into the dataset's folder. A cell reads it and checks every
listed file's sha256 again (the files are small), so a file replaced since is reported as ``user``,
never as what the folder once held. A folder without one is ``user``: unverified, with its files'
own sha256. Datasets generated inside the cell (``synthetic``) are ``generated``. A folder of
images (ImageNet) is listed but not hashed: it holds too many files to read before every cell.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from workloads.datasets import cifar, idx, imagefolder
from workloads.files import write_atomically

PROVENANCE_FILE = "PROVENANCE.json"
SCHEMA = "benchmatrix.provenance/1"
# What each reader reads, relative to the dataset folder (the entries a provenance lists).
READ: dict[str, tuple[str, ...]] = {
    "idx": idx.FILES,
    "cifar": cifar.FILES,
    "imagefolder": (imagefolder.TRAIN, imagefolder.VALIDATION),
}


class Kind(str, Enum):
    OFFICIAL = "official"  # every file verified against its published sha256
    GENERATED = "generated"  # written by a seeded generator: accuracy on it means nothing
    USER = "user"  # placed by someone else, unverified


@dataclass(frozen=True)
class Provenance:
    """``files``: entry read by a cell → its sha256 (None: a folder, not hashed); ``verified``: each
    published file checked at download → its published sha256 (an archive, or the files themselves)."""

    kind: Kind
    files: dict[str, Optional[str]] = field(default_factory=dict)
    verified: dict[str, str] = field(default_factory=dict)
    seed: Optional[int] = None
    n: Optional[int] = None  # generated training samples
    n_test: Optional[int] = None
    note: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        found = {
            "kind": self.kind.value,
            "files": dict(self.files),
            "verified": dict(self.verified),
            "seed": self.seed,
            "n": self.n,
            "n_test": self.n_test,
            "note": self.note,
        }
        return {key: value for key, value in found.items() if value not in (None, {})}

    @classmethod
    def from_dict(cls, found: dict[str, Any]) -> Provenance:
        """Raises ValueError (or KeyError/TypeError) on anything that is not a provenance."""
        return cls(
            kind=Kind(found["kind"]),
            files={str(k): (str(v) if v is not None else None) for k, v in dict(found.get("files") or {}).items()},
            verified={str(k): str(v) for k, v in dict(found.get("verified") or {}).items()},
            seed=_optional_int(found.get("seed")),
            n=_optional_int(found.get("n")),
            n_test=_optional_int(found.get("n_test")),
            note=found.get("note"),
        )


def _optional_int(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hashed(reader: str, directory: Path) -> dict[str, Optional[str]]:
    """The entries `reader` reads that exist in `directory`: files with their sha256, folders with None."""
    found: dict[str, Optional[str]] = {}
    for name in READ[reader]:
        path = directory / name
        if path.is_file():
            found[name] = sha256_of(path)
        elif path.is_dir():
            found[name] = None
    return found


def write(directory: Path, provenance: Provenance) -> Path:
    text = json.dumps({"schema": SCHEMA, **provenance.to_dict()}, indent=2, sort_keys=True) + "\n"
    return write_atomically(directory / PROVENANCE_FILE, lambda f: f.write(text.encode("utf-8")))


def read(reader: str, directory: Path) -> Provenance:
    """The folder's provenance as a cell can vouch for it: its file, checked against the files now there."""
    current = hashed(reader, directory)
    path = directory / PROVENANCE_FILE
    if not path.is_file():
        return Provenance(Kind.USER, current, note=f"no {PROVENANCE_FILE}: files placed by hand")
    try:
        found = json.loads(path.read_text())
        if found.get("schema") != SCHEMA:
            raise ValueError(f"schema {found.get('schema')!r}, expected {SCHEMA}")
        claimed = Provenance.from_dict(found)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return Provenance(Kind.USER, current, note=f"{PROVENANCE_FILE} unreadable ({exc})")
    changed = sorted(name for name in set(claimed.files) | set(current) if claimed.files.get(name) != current.get(name))
    if changed:
        note = f"{PROVENANCE_FILE} says {claimed.kind.value}, but {', '.join(changed)} changed since"
        return Provenance(Kind.USER, current, note=note)
    return claimed
