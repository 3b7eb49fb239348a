"""`bundle load`: verify everything, plan, refuse conflicts — and only then load and place.

Conflict policy: a tag in the bundle that already names a *different* image on the engine is
refused (exit 2, nothing loaded). Loading would move the tag and silently change what every
spec naming it runs, so the user decides (re-tag or remove the old image) and loads again.
The same goes for a dataset file that exists with other content.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
from rich.console import Console

from orchestrator.bundle.files import byte_progress, copy_file, read_chunks, sha256_file
from orchestrator.bundle.manifest import FileEntry, ImageEntry, Manifest, verify
from orchestrator.errors import BenchmatrixError, UsageError
from orchestrator.images.build import HASH_LABEL
from orchestrator.progress import step
from orchestrator.spec.catalog import load_catalog

GB = 1e9


@dataclass(frozen=True)
class FileToPlace:
    entry: FileEntry
    target: Path


@dataclass
class LoadPlan:
    """What `load` will do; built from the engine's and the data directory's state before any change."""

    images_to_load: list[ImageEntry] = field(default_factory=list)
    images_present: list[ImageEntry] = field(default_factory=list)
    tags_to_add: list[tuple[str, str]] = field(default_factory=list)
    files_to_place: list[FileToPlace] = field(default_factory=list)
    files_present: list[Path] = field(default_factory=list)


def image_by_ref(client: docker.DockerClient, ref: str) -> docker.models.images.Image | None:
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def plan_load(client: docker.DockerClient, manifest: Manifest, data_dir: Path) -> LoadPlan:
    plan = LoadPlan()
    conflicts = []
    for image in manifest.images:
        present = image_by_ref(client, image.id) is not None
        (plan.images_present if present else plan.images_to_load).append(image)
        for tag in image.tags:
            holder = image_by_ref(client, tag)
            if holder is None:
                plan.tags_to_add.append((tag, image.id))
            elif holder.id != image.id:
                conflicts.append(
                    f"tag {tag} names {holder.id} on this engine, the bundle's image is {image.id} "
                    f"(re-tag or remove the engine's image, e.g. `docker tag {tag} {tag}-old && docker rmi {tag}`)"
                )
    for dataset in manifest.datasets:
        for path in dataset.files:
            entry = manifest.file(path)
            target = data_dir / dataset.name / dataset.inside(path)
            if not target.exists():
                plan.files_to_place.append(FileToPlace(entry, target))
            elif target.is_file() and sha256_file(target) == entry.sha256:
                plan.files_present.append(target)
            else:
                conflicts.append(f"{target} exists with other content than the bundle's {path}; move it away first")
    if conflicts:
        raise UsageError("bundle refused, nothing loaded:\n  " + "\n  ".join(conflicts))
    return plan


def load_bundle(client: docker.DockerClient, root: Path, data_dir: Path, console: Console) -> LoadPlan:
    try:
        manifest = verify(root, console)
    except UsageError as exc:
        raise UsageError(f"nothing loaded: {exc}") from exc
    console.print(f"verified {len(manifest.files)} files ({manifest.total_bytes / GB:.2f} GB) against the manifest")
    plan = plan_load(client, manifest, data_dir)
    for image in plan.images_present:
        console.print(f"present {_name(image)} {image.id[:19]} (same id, not loaded)")
    for image in plan.images_to_load:
        _load_image(client, root, manifest, image, console)
    for tag, image_id in plan.tags_to_add:
        if image_by_ref(client, tag) is None:
            repository, _, label = tag.rpartition(":")
            client.images.get(image_id).tag(repository, label)
            console.print(f"tagged {tag} → {image_id[:19]}")
    _check_identity(client, manifest)
    for tag in stale_images(manifest):
        console.print(
            f"[yellow]note[/]: {tag} was built from another entry than this checkout's images/catalog.yaml has, "
            "so `run` would rebuild it (which needs a package index): bundle images built from the catalog you run with"
        )
    for target in plan.files_present:
        console.print(f"present {target} (same sha256)")
    for placement in plan.files_to_place:
        _place(root, placement)
        console.print(f"placed {placement.target}")
    wheels = [entry for entry in manifest.files if entry.role == "wheel"]
    if wheels:
        console.print(
            f"{len(wheels)} wheels stay in {root / 'wheels'}: build offline with `--wheelhouse {root / 'wheels'}`"
        )
    return plan


def _name(image: ImageEntry) -> str:
    return image.tags[0] if image.tags else image.id[:19]


def _load_image(
    client: docker.DockerClient, root: Path, manifest: Manifest, image: ImageEntry, console: Console
) -> None:
    size = manifest.file(image.file).size
    started = time.monotonic()
    with step(f"docker load {_name(image)}", console), byte_progress(console) as progress:
        task = progress.add_task(f"docker load {_name(image)}", total=size)
        try:
            loaded = client.images.load(read_chunks(root / image.file, lambda n: progress.advance(task, n)))
        except docker.errors.APIError as exc:
            raise BenchmatrixError(f"docker load {image.file} failed: {exc}") from exc
    seconds = time.monotonic() - started
    if image.id not in {found.id for found in loaded}:
        raise BenchmatrixError(
            f"{image.file}: docker load gave {', '.join(found.id for found in loaded) or 'no image'}, "
            f"the manifest says {image.id}"
        )
    console.print(
        f"loaded {_name(image)} {image.id[:19]}: {size / GB:.2f} GB in {seconds:.1f} s "
        f"({seconds / max(size / GB, 1e-9):.1f} s/GB)"
    )


def _check_identity(client: docker.DockerClient, manifest: Manifest) -> None:
    """After loading, every recorded id and tag must resolve to exactly the recorded image."""
    wrong = []
    for image in manifest.images:
        for ref in [image.id, *image.tags]:
            found = image_by_ref(client, ref)
            if found is None or found.id != image.id:
                wrong.append(f"{ref} → {found.id if found else 'missing'} (expected {image.id})")
    if wrong:
        raise BenchmatrixError("after loading, the engine does not hold the bundle's images: " + "; ".join(wrong))


def stale_images(manifest: Manifest) -> list[str]:
    """Tags of bundled images this checkout's catalog would rebuild (offline, `run` could not)."""
    catalog = load_catalog()
    entries = {entry.tag: entry for entry in catalog.images}
    return [
        tag
        for image in manifest.images
        for tag in image.tags
        if tag in entries and image.labels.get(HASH_LABEL) != catalog.entry_hash(entries[tag])
    ]


def _place(root: Path, placement: FileToPlace) -> None:
    """Copy a dataset file where cells read it (uid 1000 must read it), checking its hash on the way."""
    for directory in reversed([placement.target.parent, *placement.target.parent.parents]):
        if not directory.exists():
            directory.mkdir()
            directory.chmod(0o755)
    written = copy_file(root / placement.entry.path, placement.target)
    if written.sha256 != placement.entry.sha256:
        placement.target.unlink()
        raise BenchmatrixError(f"{placement.entry.path} changed while it was copied; load again")
    placement.target.chmod(0o644)
