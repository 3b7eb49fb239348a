"""Offline base images: debootstrap a minimal Debian and `docker import` it (no registry needed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import docker.errors
from rich.console import Console

from orchestrator.errors import BenchmatrixError, UsageError
from orchestrator.progress import step
from orchestrator.spec.catalog import SUITES, Base

DEFAULT_MIRROR = "http://deb.debian.org/debian"
INCLUDE = "python3,python3-pip,python3-venv,ca-certificates"
MIRROR_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)*/?$"


def base_tag(suite: str) -> str:
    return f"benchmatrix/base:{suite}"


def bootstrap(
    client: docker.DockerClient,
    suite: str,
    *,
    mirror: str = DEFAULT_MIRROR,
    force: bool = False,
    on_line: Callable[[str], None] = lambda line: None,
    console: Optional[Console] = None,
) -> str:
    """Build `benchmatrix/base:<suite>` unless present (or `force`); return the image id (start and end
    on `console` when that is not a terminal)."""
    if suite not in SUITES:
        raise UsageError(f"unknown suite '{suite}'; known: {', '.join(SUITES)}")
    if not re.fullmatch(MIRROR_PATTERN, mirror):
        raise UsageError(f"--mirror {mirror!r}: expected an http(s) URL such as {DEFAULT_MIRROR}")
    tag = base_tag(suite)
    if not force:
        try:
            image = client.images.get(tag)
            on_line(f"{tag} is present ({image.short_id}); --force rebuilds it")
            return image.id
        except docker.errors.ImageNotFound:
            pass
    if shutil.which("debootstrap") is None:
        raise UsageError("debootstrap is not installed: apt-get install -y debootstrap")
    if os.geteuid() != 0:
        raise UsageError("debootstrap needs root: run `base bootstrap` as root (or with sudo)")
    with step(f"bootstrap {tag}", console), tempfile.TemporaryDirectory(prefix="benchmatrix-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        command = ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", suite, str(rootfs), mirror]
        on_line(f"debootstrap {suite} from {mirror}")
        _run_logged(command, on_line)
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        client.api.import_image_from_file(
            str(archive),
            repository="benchmatrix/base",
            tag=suite,
            changes=[
                f"LABEL io.benchmatrix.base-suite={suite} org.opencontainers.image.title={tag}",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                'CMD ["python3"]',
            ],
        )
    image = client.images.get(tag)
    on_line(f"imported {tag} ({image.short_id})")
    return image.id


def _run_logged(command: list[str], on_line: Callable[[str], None]) -> None:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        tail = (tail + [line.rstrip()])[-20:]
        on_line(line.rstrip())
    if process.wait() != 0:
        raise BenchmatrixError(f"{command[0]} failed (exit {process.returncode}):\n" + "\n".join(tail))


def ensure_base(
    client: docker.DockerClient,
    base: Base,
    on_line: Callable[[str], None] = lambda line: None,
    console: Optional[Console] = None,
) -> None:
    """A suite base is bootstrapped when missing; a registry base must be present or pullable."""
    if base.suite:
        if _missing(client, base.ref):
            bootstrap(client, base.suite, on_line=on_line, console=console)
        return
    if _missing(client, base.ref):
        try:
            on_line(f"pulling {base.ref}")
            with step(f"pull {base.ref}", console):
                client.images.pull(base.ref)
        except docker.errors.APIError as exc:
            raise UsageError(
                f"base image {base.ref} is not present and cannot be pulled ({exc.explanation}); "
                "without a registry use a bootstrapped suite base (base: bookworm|bullseye|trixie)"
            ) from exc


def _missing(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return True
    return False
