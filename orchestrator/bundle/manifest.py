"""The bundle manifest (`manifest.json`): what a bundle holds, and the checks that run before any load.

Every path in a manifest is relative, stays inside the bundle, and names a file whose size and
sha256 are recorded; `verify` refuses a bundle with any missing, truncated or altered file.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, Field, StringConstraints, ValidationError, model_validator
from rich.console import Console

from orchestrator import __version__
from orchestrator.bundle.files import byte_progress, sha256_file
from orchestrator.errors import SpecError, UsageError
from orchestrator.progress import step
from orchestrator.spec.validate import Name
from orchestrator.spec.yamlfile import Strict, invalid

FORMAT: Final = "benchmatrix.bundle/1"
MANIFEST_NAME = "manifest.json"
Role = Literal["image", "dataset", "wheel"]

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ImageId = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
# A Docker reference as the engine lists it in RepoTags / RepoDigests (registry host and port allowed).
REPOSITORY = r"^[a-z0-9][a-z0-9._:/-]{0,254}"
ImageTag = Annotated[str, StringConstraints(pattern=REPOSITORY + r":[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")]
RepoDigest = Annotated[str, StringConstraints(pattern=REPOSITORY + r"@sha256:[0-9a-f]{64}$")]


def _inside_bundle(path: str) -> str:
    parts = path.split("/")
    if (
        not path
        or "\\" in path
        or "\x00" in path
        or PurePosixPath(path).is_absolute()
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValueError(f"'{path}' is not a plain relative path inside the bundle (no '..', '.', '//' or leading '/')")
    return path


BundlePath = Annotated[str, AfterValidator(_inside_bundle)]


class FileEntry(Strict):
    path: BundlePath
    sha256: Sha256
    size: int = Field(ge=0)
    role: Role


class ImageEntry(Strict):
    """One image: the tar holding it, and the identity it must have on the engine after loading."""

    file: BundlePath
    id: ImageId
    tags: list[ImageTag]
    repo_digests: list[RepoDigest]
    labels: dict[str, str]
    versions: dict[str, str]
    size: int = Field(ge=0)


class DatasetEntry(Strict):
    """A dataset's files, each `datasets/<name>/<path>`; `load` places them at `<data-dir>/<name>/<path>`."""

    name: Name
    files: list[BundlePath] = Field(min_length=1)

    @model_validator(mode="after")
    def _under_its_folder(self) -> DatasetEntry:
        for path in self.files:
            if not path.startswith(self.prefix):
                raise ValueError(f"dataset {self.name}: '{path}' is not under {self.prefix}")
        return self

    @property
    def prefix(self) -> str:
        return f"datasets/{self.name}/"

    def inside(self, path: str) -> str:
        """Where a file goes within the dataset's folder."""
        return path[len(self.prefix) :]


class Manifest(Strict):
    format: Literal["benchmatrix.bundle/1"]
    created_at: datetime
    tool_version: str
    catalog_hash: Sha256
    files: list[FileEntry]
    images: list[ImageEntry]
    datasets: list[DatasetEntry]

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        roles: dict[str, str] = {}
        for entry in self.files:
            if entry.path in roles:
                raise ValueError(f"file '{entry.path}' is listed twice")
            roles[entry.path] = entry.role
        for index, image in enumerate(self.images):
            if roles.get(image.file) != "image":
                raise ValueError(f"images.{index}.file '{image.file}' is not a listed file of role 'image'")
        for index, dataset in enumerate(self.datasets):
            for path in dataset.files:
                if roles.get(path) != "dataset":
                    raise ValueError(f"datasets.{index}: '{path}' is not a listed file of role 'dataset'")
        return self

    def file(self, path: str) -> FileEntry:
        return next(entry for entry in self.files if entry.path == path)

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)


def read_manifest(root: Path) -> Manifest:
    """Parse and validate `root/manifest.json`; every failure names the file and the key."""
    if not root.is_dir():
        raise UsageError(f"{root}: no such bundle directory")
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise UsageError(f"{root}: no {MANIFEST_NAME} (not a bundle, or `bundle save` did not finish)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(path), "", f"cannot read the manifest ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise SpecError(str(path), "", f"not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise SpecError(str(path), "", f"expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise SpecError(
            str(path),
            "format",
            f"unknown bundle format {data.get('format')!r}; benchmatrix {__version__} reads {FORMAT!r} "
            "(a newer bundle needs a newer benchmatrix)",
        )
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise invalid(path, exc) from exc
    real_root = root.resolve()
    for index, entry in enumerate(manifest.files):
        if not (root / entry.path).resolve().is_relative_to(real_root):
            raise SpecError(str(path), f"files.{index}.path", f"'{entry.path}' leads outside the bundle (a symlink)")
    return manifest


def verify(root: Path, console: Console) -> Manifest:
    """Check every listed file's presence, size and sha256; raise one error that lists every problem."""
    manifest = read_manifest(root)
    problems = []
    for entry in manifest.files:
        target = root / entry.path
        if not target.is_file():
            problems.append(f"{entry.path}: missing")
        elif target.stat().st_size != entry.size:
            problems.append(
                f"{entry.path}: {target.stat().st_size} bytes, the manifest says {entry.size} (truncated or altered)"
            )
    if not problems:
        with step(f"verify {root}", console), byte_progress(console) as progress:
            task = progress.add_task("verifying", total=manifest.total_bytes)
            for entry in manifest.files:
                progress.update(task, description=f"sha256 {entry.path}")
                found = sha256_file(root / entry.path, lambda n: progress.advance(task, n))
                if found != entry.sha256:
                    problems.append(f"{entry.path}: sha256 {found}, the manifest says {entry.sha256} (altered)")
    if problems:
        raise UsageError(f"bundle {root} refused:\n  " + "\n  ".join(problems))
    return manifest
