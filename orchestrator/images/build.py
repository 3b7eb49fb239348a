"""Render Dockerfiles from the catalog (Jinja2) and build them with the Docker SDK.

Images carry OCI labels and the catalog entry's hash, so `ensure_image` can tell an up-to-date
image from a stale one without rebuilding, and a rebuild of an unchanged entry is a cache hit.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import docker.errors
import jinja2
from rich.console import Console

from orchestrator import __version__
from orchestrator.errors import BuildFailed, ImageNotBuildable, UsageError
from orchestrator.images.base import ensure_base
from orchestrator.progress import step
from orchestrator.spec.catalog import TEMPLATES_DIR, Catalog, ImageSpec

HASH_LABEL = "io.benchmatrix.catalog-hash"
DEFAULT_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class BuildOptions:
    ca_bundle: Optional[Path] = DEFAULT_CA_BUNDLE if DEFAULT_CA_BUNDLE.is_file() else None
    wheelhouse: Optional[Path] = None
    logs_dir: Path = Path("build/logs")


def labels_for(catalog: Catalog, image: ImageSpec) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": image.tag,
        "org.opencontainers.image.version": image.version,
        "org.opencontainers.image.description": image.description or image.key,
        "org.opencontainers.image.vendor": "benchmatrix",
        "org.opencontainers.image.base.name": catalog.base_of(image).ref,
        "io.benchmatrix.framework": image.framework,
        "io.benchmatrix.variant": image.variant,
        "io.benchmatrix.device": image.device,
        "io.benchmatrix.tool-version": __version__,
        HASH_LABEL: catalog.entry_hash(image),
    }


def render(catalog: Catalog, image: ImageSpec, *, ca_bundle: bool, wheelhouse: bool) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template("Dockerfile.j2").render(
        image=image,
        base_ref=catalog.base_of(image).ref,
        base_apt=catalog.base_of(image).apt,
        ca_bundle=ca_bundle,
        wheelhouse=wheelhouse,
    )


def context_dir_name(image: ImageSpec) -> str:
    return image.tag.replace("/", "_").replace(":", "_")


def render_all(catalog: Catalog, out: Path) -> list[Path]:
    """One Dockerfile per catalog image, as `images build` would use it with a CA bundle."""
    written = []
    for image in catalog.images:
        target = out / context_dir_name(image) / "Dockerfile"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(catalog, image, ca_bundle=True, wheelhouse=image.wheelhouse))
        written.append(target)
    return written


def _requirement_name(requirement: str) -> str:
    name = re.split(r"[\[<>=!~]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "_", name).lower()


def _wheels_for(image: ImageSpec, wheelhouse: Path) -> list[Path]:
    """Only the wheelhouse's wheels of the entry's own requirements go into the build context."""
    wanted = {_requirement_name(req) for req in image.pip}
    return sorted(
        wheel
        for wheel in wheelhouse.glob("*.whl")
        if re.sub(r"[-_.]+", "_", wheel.name.split("-")[0]).lower() in wanted
    )


def prepare_context(catalog: Catalog, image: ImageSpec, options: BuildOptions, context: Path) -> None:
    wheels = _wheels_for(image, options.wheelhouse) if image.wheelhouse and options.wheelhouse else []
    if options.ca_bundle is not None:
        if not options.ca_bundle.is_file():
            raise UsageError(f"--ca-bundle {options.ca_bundle}: no such file")
        shutil.copyfile(options.ca_bundle, context / "ca-bundle.crt")
    if wheels:
        (context / "wheelhouse").mkdir()
        for wheel in wheels:
            _link_or_copy(wheel, context / "wheelhouse" / wheel.name)
    dockerfile = render(catalog, image, ca_bundle=options.ca_bundle is not None, wheelhouse=bool(wheels))
    (context / "Dockerfile").write_text(dockerfile)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def image_state(client: docker.DockerClient, catalog: Catalog, image: ImageSpec) -> str:
    """'missing', 'stale' (built from another catalog entry or template) or 'current'."""
    try:
        found = client.images.get(image.tag)
    except docker.errors.ImageNotFound:
        return "missing"
    labels = found.labels or {}
    return "current" if labels.get(HASH_LABEL) == catalog.entry_hash(image) else "stale"


def ensure_image(
    client: docker.DockerClient,
    catalog: Catalog,
    image: ImageSpec,
    options: BuildOptions,
    on_line: Callable[[str], None] = lambda line: None,
    console: Optional[Console] = None,
    *,
    force: bool = False,
) -> str:
    """The image id, building first when the image is missing or stale (always, with `force`); a
    build's full log goes to `options.logs_dir` (start and end on `console` when that is not a terminal)."""
    if not force and image_state(client, catalog, image) == "current":
        return client.images.get(image.tag).id
    if image.unbuildable:
        raise ImageNotBuildable(f"{image.key} cannot be built here: {' '.join(image.unbuildable.split())}")
    if image.wheelhouse and options.wheelhouse is None:
        on_line(f"note: no --wheelhouse given; pip will look for {image.pip} on {image.extra_index_url or 'PyPI'}")
    ensure_base(client, catalog.base_of(image), on_line=on_line, console=console)
    with step(f"build {image.tag}", console):
        return _build(client, catalog, image, options, on_line)


def _build(
    client: docker.DockerClient,
    catalog: Catalog,
    image: ImageSpec,
    options: BuildOptions,
    on_line: Callable[[str], None],
) -> str:
    options.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = options.logs_dir / f"{context_dir_name(image)}.log"
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    with tempfile.TemporaryDirectory(prefix="benchmatrix-build-") as tmp, log_path.open("w", buffering=1) as log:
        prepare_context(catalog, image, options, Path(tmp))
        stream = client.api.build(
            path=tmp, tag=image.tag, labels=labels_for(catalog, image), rm=True, forcerm=True, pull=False, decode=True
        )
        for chunk in stream:
            if "error" in chunk:
                log.write(chunk["error"] + "\n")
                tail.append(chunk["error"])
                raise BuildFailed(f"building {image.tag} failed (full log: {log_path}):\n" + "\n".join(tail))
            text = chunk.get("stream", "")
            if text:
                log.write(text)
                for line in text.splitlines():
                    if line.strip():
                        tail.append(line)
                        on_line(line.strip())
    return client.images.get(image.tag).id
