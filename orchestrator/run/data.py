"""Host-side datasets: what files each needs, fetching with sha256 checks, and small valid samples.

The names are the workloads' own (`workloads.datasets.DATASETS`); the writers are the
workloads' readers' counterparts, so a sample is valid by construction. Nothing is ever
downloaded inside a cell: `fetch` runs here, cells get the folder mounted read-only.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from orchestrator.errors import BenchmatrixError, UsageError
from orchestrator.progress import step
from workloads.datasets import DATASETS as READERS
from workloads.datasets import cifar, idx, imagefolder, provenance
from workloads.datasets.provenance import sha256_of
from workloads.files import write_atomically
from workloads.ops import NO_DATASET

Writer = Callable[..., list[Path]]


@dataclass(frozen=True)
class Download:
    url: str
    sha256: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[1]


@dataclass(frozen=True)
class DatasetInfo:
    """`files`: what a cell reads, relative to the dataset's folder (a file or a folder).

    `downloads` are the official files, each checked against its sha256; with `archive_dir`
    the single download is a tarball whose `archive_dir/<file>` members are extracted.
    `writer` makes a small valid sample; `how_to_get` says where the data comes from when
    nothing can be downloaded. A dataset with no `files` is generated inside each cell.
    """

    files: tuple[str, ...] = ()
    downloads: tuple[Download, ...] = ()
    archive_dir: Optional[str] = None
    writer: Optional[Writer] = None
    how_to_get: str = ""

    @property
    def generated(self) -> bool:
        return not self.files


def _idx_downloads(base_url: str, sha256: tuple[str, str, str, str]) -> tuple[Download, ...]:
    return tuple(Download(base_url + name, digest) for name, digest in zip(idx.FILES, sha256))


DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        files=idx.FILES,
        downloads=_idx_downloads(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            (
                "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
                "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
                "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
                "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
            ),
        ),
        writer=idx.write_sample,
    ),
    "mnist": DatasetInfo(
        files=idx.FILES,
        downloads=_idx_downloads(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        ),
        writer=idx.write_sample,
    ),
    "cifar10": DatasetInfo(
        files=cifar.FILES,
        downloads=(
            Download(
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            ),
        ),
        archive_dir="cifar-10-batches-py",
        writer=cifar.write_sample,
    ),
    "imagenet": DatasetInfo(
        files=(imagefolder.TRAIN,),
        writer=imagefolder.write_sample,
        how_to_get=(
            "ImageNet (ILSVRC2012) is downloadable only with an image-net.org account: place its "
            "train/<class>/*.JPEG folders (and optionally val/<class>/*.JPEG) in the dataset folder"
        ),
    ),
    "synthetic": DatasetInfo(),
    "synthetic_seq": DatasetInfo(),
}
FETCH_TIMEOUT_S = 20


def info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UsageError(f"unknown dataset '{name}'; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def missing_files(name: str, directory: Path) -> list[Path]:
    return [directory / f for f in info(name).files if not (directory / f).exists()]


def require(name: str, directory: Path) -> None:
    """Raise before any container starts when a dataset's files are not where the cell expects them."""
    if name == NO_DATASET or info(name).generated:
        return
    missing = missing_files(name, directory)
    if missing:
        raise UsageError(
            f"dataset {name}: missing {', '.join(str(p) for p in missing)}. "
            f"Run `python -m orchestrator data fetch {name} --dir {directory}` (internet) or "
            f"`python -m orchestrator data sample {name} --dir {directory}` (a small valid sample)."
        )
    leaving = links_leaving(directory)
    if leaving:
        raise UsageError(
            f"dataset {name}: {', '.join(f'{link} -> {target}' for link, target in leaving)} "
            f"point(s) outside {directory.resolve()}, and a cell sees only that folder (mounted read-only): "
            f"copy the files in, or pass --data-dir a folder that holds them"
        )
    unreadable = _unreadable_by_others([directory.parent, directory] + [directory / f for f in info(name).files])
    if unreadable:
        raise UsageError(
            f"dataset {name}: the cell's user (uid 1000) cannot read {', '.join(str(p) for p in unreadable)}; "
            f"make them world-readable: chmod -R o+rX {directory.parent}"
        )


def links_leaving(directory: Path) -> list[tuple[Path, Path]]:
    """Symbolic links under a dataset's folder whose targets lie outside it: they dangle in a cell,
    which mounts only the folder (the folder itself may be a link: its target is what is mounted)."""
    root = directory.resolve()
    found = []
    for folder, subfolders, files in os.walk(root):
        for entry in [*subfolders, *files]:
            path = Path(folder) / entry
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                found.append((path, path.resolve()))
    return sorted(found)


def _unreadable_by_others(paths: list[Path]) -> list[Path]:
    """Cells run as uid 1000: what they read must be readable (and directories searchable) by others."""
    bad = []
    for path in paths:
        mode = path.stat().st_mode
        needed = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)
        if mode & needed != needed:
            bad.append(path)
    return bad


def sample(name: str, directory: Path, n_train: int, n_test: int, seed: int = 0, force: bool = False) -> list[Path]:
    """Write a small valid copy of `name` in its original format; [] for generated datasets.

    Files already there (perhaps the official ones) are replaced only with `force`.
    """
    dataset = info(name)
    if min(n_train, n_test) < 1:
        raise UsageError(f"dataset {name}: a sample needs at least 1 sample per split (--n 1 or more), got {n_train}")
    if dataset.writer is None:
        return []
    usable_folder(directory)
    present = [directory / f for f in dataset.files if (directory / f).exists()]
    if present and not force:
        raise UsageError(
            f"dataset {name}: {', '.join(str(p) for p in present)} already exist; a sample would replace them "
            "(pass --force to replace them, or choose another --dir)"
        )
    try:
        written = dataset.writer(directory, n_train=n_train, n_test=n_test, seed=seed)
    except OSError as exc:
        raise UsageError(f"dataset {name}: cannot write in {directory} ({exc.strerror})") from exc
    files = provenance.hashed(READERS[name].reader, directory)
    provenance.write(
        directory, provenance.Provenance(provenance.Kind.GENERATED, files, seed=seed, n=n_train, n_test=n_test)
    )
    return written


def usable_folder(directory: Path) -> None:
    """Create `directory` if needed; a path that is a file, or a folder this user cannot write, is refused."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise UsageError(f"{directory} is not a folder") from exc
    except OSError as exc:
        raise UsageError(f"cannot create the folder {directory} ({exc.strerror})") from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in the folder {directory} (permission denied for this user)")


def fetch(name: str, directory: Path, console: Optional[Console] = None) -> list[Path]:
    """Download each official file, verify its sha256, then move it into place (never half a file).

    With a `console`, each download shows its progress there (CIFAR-10 is ~170 MB).
    """
    dataset = info(name)
    if dataset.generated:
        return []
    if not dataset.downloads:
        raise UsageError(f"dataset {name} cannot be downloaded: {dataset.how_to_get} ({directory})")
    usable_folder(directory)
    with step(f"fetch {name}", console):
        with _download_progress(console) as progress:
            placed = [_download(name, dataset, item, directory, progress) for item in dataset.downloads]
        if dataset.archive_dir is not None:
            placed = _extract(placed[0], dataset.archive_dir, dataset.files, directory)
        verified = {item.name: item.sha256 for item in dataset.downloads}
        files = provenance.hashed(READERS[name].reader, directory)
        provenance.write(directory, provenance.Provenance(provenance.Kind.OFFICIAL, files, verified))
    return placed


def _download_progress(console: Optional[Console]) -> Progress:
    """A transient bar per file: name, bytes of total, speed, time left (disabled without a console)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=console is None,
        transient=True,
    )


def _download(name: str, dataset: DatasetInfo, item: Download, directory: Path, progress: Progress) -> Path:
    """One official file into place; unreachable (offline) is bad input: which files to place where."""
    target = directory / item.name
    if target.is_file() and sha256_of(target) == item.sha256:
        return target

    def fetch(part: BinaryIO) -> None:
        """The download, placed only when its sha256 is the expected one."""
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(item.url, timeout=FETCH_TIMEOUT_S) as response:
                size = response.headers.get("Content-Length")
                task = progress.add_task(item.name, total=int(size) if size and size.isdigit() else None)
                for block in iter(lambda: response.read(1 << 20), b""):
                    part.write(block)
                    digest.update(block)
                    progress.advance(task, len(block))
        except (urllib.error.URLError, OSError) as exc:
            names = ", ".join(d.name for d in dataset.downloads)
            raise UsageError(
                f"cannot download {item.url} ({getattr(exc, 'reason', exc)}). Without internet, place the official "
                f"files {names} in {directory} (or use `data sample {name} --dir {directory}`)."
            ) from exc
        if digest.hexdigest() != item.sha256:
            raise BenchmatrixError(f"{item.url}: sha256 {digest.hexdigest()} does not match the expected {item.sha256}")

    return write_atomically(target, fetch)


def _extract(archive: Path, member_dir: str, files: tuple[str, ...], directory: Path) -> list[Path]:
    """Copy `member_dir/<file>` out of a verified tarball by name: no member can land elsewhere."""
    placed = []
    with tarfile.open(archive, "r:gz") as tar:
        for name in files:
            try:
                member = tar.getmember(f"{member_dir}/{name}")
            except KeyError as exc:
                raise BenchmatrixError(f"{archive}: has no {member_dir}/{name}") from exc
            source = tar.extractfile(member) if member.isfile() else None
            if source is None:
                raise BenchmatrixError(f"{archive}: {member_dir}/{name} is not a regular file")
            with source:
                try:
                    placed.append(write_atomically(directory / name, functools.partial(shutil.copyfileobj, source)))
                except (OSError, tarfile.TarError, EOFError) as exc:
                    raise BenchmatrixError(f"{archive}: cannot read {member_dir}/{name} ({exc})") from exc
    return placed
