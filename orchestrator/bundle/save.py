"""`bundle save`: one `docker save` tar per image, datasets and wheels, then the manifest.

Everything that can be checked (images present, datasets complete, output directory free, each
image's installed versions readable) is checked before the first byte is written; a save that
fails half-way removes its directory, so a directory with a manifest is always a whole bundle.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import docker
import docker.errors
from rich.console import Console
from rich.progress import Progress

from orchestrator import __version__
from orchestrator.backends.engine import CellContainer, ContainerSpec
from orchestrator.bundle.files import byte_progress, copy_file, write_stream
from orchestrator.bundle.manifest import FORMAT, MANIFEST_NAME, DatasetEntry, FileEntry, ImageEntry, Manifest, Role
from orchestrator.clock import now
from orchestrator.errors import BenchmatrixError, UsageError
from orchestrator.images import build as images
from orchestrator.progress import step
from orchestrator.run import data
from orchestrator.run.plan import parse_framework_filter
from orchestrator.spec.catalog import Catalog, ImageSpec, load_catalog

BUNDLE_LABEL = "benchmatrix.bundle"
VERSIONS_MARKER = "BENCHMATRIX_VERSIONS="
# Runs inside the image (Python >= 3.8): every installed distribution and its version, as one JSON line.
VERSIONS_PROBE = (
    "import importlib.metadata as m, json; "
    "print('" + VERSIONS_MARKER + "' + json.dumps("
    "{d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}, sort_keys=True))"
)
GB = 1e9


@dataclass(frozen=True)
class SaveRequest:
    out: Path
    frameworks: tuple[str, ...] = ()
    variant: Optional[str] = None
    images: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    data_dir: Path = Path("data")
    wheelhouse: Optional[Path] = None
    with_base: bool = False


@dataclass(frozen=True)
class Selected:
    """An engine image chosen for the bundle, under the reference it was asked for by."""

    ref: str
    image: docker.models.images.Image


def catalog_entries(catalog: Catalog, frameworks: tuple[str, ...], variant: Optional[str]) -> list[ImageSpec]:
    """Catalog images named by `--framework`/`--variant` (default: every buildable CPU image)."""
    entries: list[ImageSpec] = []
    for text in frameworks or tuple(catalog.frameworks):
        name, version = parse_framework_filter(text)
        entries += catalog.find(name, version, variant)
    if not variant:
        entries = [entry for entry in entries if entry.device == "cpu"]
    if not frameworks:
        entries = [entry for entry in entries if not entry.unbuildable]
    return entries


def requested_refs(catalog: Catalog, request: SaveRequest) -> list[str]:
    entries = (
        []
        if request.images and not request.frameworks
        else catalog_entries(catalog, request.frameworks, request.variant)
    )
    refs = [entry.tag for entry in entries]
    if request.with_base:
        refs += [catalog.base_of(entry).ref for entry in entries]
    return list(dict.fromkeys(refs + list(request.images)))


def select_images(
    client: docker.DockerClient, catalog: Catalog, request: SaveRequest, console: Console
) -> list[Selected]:
    selected: dict[str, Selected] = {}
    missing = []
    for ref in requested_refs(catalog, request):
        try:
            image = client.images.get(ref)
        except docker.errors.ImageNotFound:
            missing.append(ref)
            continue
        selected.setdefault(image.id, Selected(ref, image))
    if missing:
        raise UsageError(
            f"not on this engine: {', '.join(missing)}; build them first "
            "(`python -m orchestrator images build --framework NAME@VERSION`) or leave them out"
        )
    by_tag = {entry.tag: entry for entry in catalog.images}
    for item in selected.values():
        for tag in item.image.tags:
            if tag in by_tag and images.image_state(client, catalog, by_tag[tag]) == "stale":
                console.print(f"[yellow]note[/]: {tag} was built from another catalog entry (stale); saved as it is")
    return list(selected.values())


def dataset_sources(request: SaveRequest, console: Console) -> dict[str, list[tuple[Path, str]]]:
    """Per dataset, the files its cells read (folders walked), each with its path inside the dataset."""
    sources = {}
    for name in request.datasets:
        dataset = data.info(name)
        directory = request.data_dir / name
        if dataset.generated:
            console.print(f"[yellow]note[/]: dataset {name} is generated inside each cell; nothing to bundle")
            continue
        missing = data.missing_files(name, directory)
        if missing:
            raise UsageError(
                f"--with-datasets {name}: missing {', '.join(str(p) for p in missing)} "
                f"(fetch or sample it into {directory} first, or pass --data-dir)"
            )
        found = []
        for item in dataset.files:
            top = directory / item
            files = sorted(path for path in top.rglob("*") if path.is_file()) if top.is_dir() else [top]
            found += [(path, path.relative_to(directory).as_posix()) for path in files]
        sources[name] = found
    return sources


def wheel_sources(wheelhouse: Optional[Path]) -> list[Path]:
    if wheelhouse is None:
        return []
    wheels = sorted(wheelhouse.glob("*.whl")) if wheelhouse.is_dir() else []
    if not wheels:
        raise UsageError(f"--with-wheelhouse {wheelhouse}: no *.whl files there")
    return wheels


def installed_versions(client: docker.DockerClient, selected: Selected) -> dict[str, str]:
    """Run the image once (no network, the cell hardening) and read every installed package's version."""
    spec = ContainerSpec(
        image=selected.image.id,
        command=["python3", "-c", VERSIONS_PROBE],
        mounts=[],
        labels={BUNDLE_LABEL: "versions"},
        tmpfs_size="64m",
    )
    try:
        with CellContainer(client, spec) as container:
            ended = container.run(timeout_s=120)
    except docker.errors.APIError as exc:
        raise BenchmatrixError(f"{selected.ref}: cannot run python3 in the image to read its versions ({exc})") from exc
    for line in ended.logs.splitlines():
        if line.startswith(VERSIONS_MARKER):
            return json.loads(line[len(VERSIONS_MARKER) :])
    raise BenchmatrixError(
        f"{selected.ref}: reading installed versions failed (exit {ended.exit_code}): {ended.logs[-800:]}"
    )


def tar_name(selected: Selected) -> str:
    name = selected.ref if selected.ref in selected.image.tags else selected.image.id.split(":", 1)[1][:16]
    return "images/" + name.replace("/", "_").replace(":", "_") + ".tar"


def save_bundle(client: docker.DockerClient, request: SaveRequest, console: Console) -> Manifest:
    catalog = load_catalog()
    chosen = select_images(client, catalog, request, console)
    datasets = dataset_sources(request, console)
    wheels = wheel_sources(request.wheelhouse)
    if not chosen and not datasets and not wheels:
        raise UsageError("nothing to save: select images (--framework, --image), --with-datasets or --with-wheelhouse")
    if request.out.exists() and (not request.out.is_dir() or any(request.out.iterdir())):
        raise UsageError(f"--out {request.out}: exists and is not an empty directory; bundles are written fresh")
    versions = {item.image.id: installed_versions(client, item) for item in chosen}
    request.out.mkdir(parents=True, exist_ok=True)
    try:
        manifest = _write(request, catalog, chosen, versions, datasets, wheels, console)
    except BaseException:
        shutil.rmtree(request.out, ignore_errors=True)
        raise
    return manifest


def _write(
    request: SaveRequest,
    catalog: Catalog,
    chosen: list[Selected],
    versions: dict[str, dict[str, str]],
    datasets: dict[str, list[tuple[Path, str]]],
    wheels: list[Path],
    console: Console,
) -> Manifest:
    files: list[FileEntry] = []
    image_entries: list[ImageEntry] = []
    with byte_progress(console) as progress:
        for item in chosen:
            image = item.image
            path = tar_name(item)
            task = progress.add_task(f"docker save {item.ref}", total=image.attrs["Size"])
            started = time.monotonic()
            named = item.ref if item.ref in image.tags else False
            with step(f"docker save {item.ref}", console):
                written = write_stream(
                    image.save(chunk_size=4 << 20, named=named),
                    request.out / path,
                    functools.partial(progress.advance, task),
                )
            seconds = time.monotonic() - started
            progress.remove_task(task)
            console.print(
                f"saved {item.ref} {image.id[:19]}: {written.size / GB:.2f} GB in {seconds:.1f} s "
                f"({seconds / max(written.size / GB, 1e-9):.1f} s/GB)"
            )
            files.append(FileEntry(path=path, sha256=written.sha256, size=written.size, role="image"))
            image_entries.append(
                ImageEntry(
                    file=path,
                    id=image.id,
                    tags=sorted(image.tags),
                    repo_digests=sorted(image.attrs.get("RepoDigests") or []),
                    labels=image.labels or {},
                    versions=versions[image.id],
                    size=image.attrs["Size"],
                )
            )
        dataset_entries = []
        for name, sources in datasets.items():
            paths = [f"datasets/{name}/{inside}" for _, inside in sources]
            with step(f"copy dataset {name}", console):
                for (source, _), path in zip(sources, paths):
                    files.append(_copy(source, request.out / path, path, "dataset", progress))
            dataset_entries.append(DatasetEntry(name=name, files=paths))
            console.print(f"saved dataset {name}: {len(paths)} files")
        for wheel in wheels:
            files.append(_copy(wheel, request.out / "wheels" / wheel.name, f"wheels/{wheel.name}", "wheel", progress))
        if wheels:
            console.print(f"saved {len(wheels)} wheels from {request.wheelhouse}")
    manifest = Manifest(
        format=FORMAT,
        created_at=now(),
        tool_version=__version__,
        catalog_hash=catalog.catalog_hash(),
        files=files,
        images=image_entries,
        datasets=dataset_entries,
    )
    write_stream([manifest.model_dump_json(indent=2).encode() + b"\n"], request.out / MANIFEST_NAME)
    return manifest


def _copy(source: Path, target: Path, path: str, role: Role, progress: Progress) -> FileEntry:
    task = progress.add_task(f"copy {path}", total=source.stat().st_size)
    written = copy_file(source, target, lambda n: progress.advance(task, n))
    progress.remove_task(task)
    return FileEntry(path=path, sha256=written.sha256, size=written.size, role=role)
