"""Host-side datasets: what files each needs, fetching with sha256 checks, and small valid samples."""

from __future__ import annotations

import hashlib
import stat
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import BenchmatrixError, UsageError
from workloads.datasets import idx


@dataclass(frozen=True)
class DatasetFile:
    name: str
    sha256: str


@dataclass(frozen=True)
class DatasetInfo:
    base_url: str
    files: tuple[DatasetFile, ...]


DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        base_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        files=(
            DatasetFile(
                "train-images-idx3-ubyte.gz", "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc"
            ),
            DatasetFile(
                "train-labels-idx1-ubyte.gz", "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc"
            ),
            DatasetFile(
                "t10k-images-idx3-ubyte.gz", "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229"
            ),
            DatasetFile(
                "t10k-labels-idx1-ubyte.gz", "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf"
            ),
        ),
    ),
}
FETCH_TIMEOUT_S = 20


def info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UsageError(f"unknown dataset '{name}'; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def missing_files(name: str, directory: Path) -> list[Path]:
    return [directory / f.name for f in info(name).files if not (directory / f.name).is_file()]


def require(name: str, directory: Path) -> None:
    """Raise before any container starts when a dataset's files are not where the cell expects them."""
    missing = missing_files(name, directory)
    if missing:
        raise UsageError(
            f"dataset {name}: missing {', '.join(str(p) for p in missing)}. "
            f"Run `python -m orchestrator data fetch {name} --dir {directory}` (internet) or "
            f"`python -m orchestrator data sample {name} --dir {directory}` (a small valid sample)."
        )
    unreadable = _unreadable_by_others([directory.parent, directory] + [directory / f.name for f in info(name).files])
    if unreadable:
        raise UsageError(
            f"dataset {name}: the cell's user (uid 1000) cannot read {', '.join(str(p) for p in unreadable)}; "
            f"make them world-readable: chmod -R o+rX {directory.parent}"
        )


def _unreadable_by_others(paths: list[Path]) -> list[Path]:
    """Cells run as uid 1000: what they read must be readable (and directories searchable) by others."""
    bad = []
    for path in paths:
        mode = path.stat().st_mode
        needed = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)
        if mode & needed != needed:
            bad.append(path)
    return bad


def sample(name: str, directory: Path, n_train: int, n_test: int, seed: int = 0) -> list[Path]:
    info(name)
    directory.mkdir(parents=True, exist_ok=True)
    idx.write_sample(directory, n_train=n_train, n_test=n_test, seed=seed)
    return [directory / f.name for f in info(name).files]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name: str, directory: Path) -> list[Path]:
    """Download each official file, verify its sha256, then move it into place (never half a file)."""
    dataset = info(name)
    directory.mkdir(parents=True, exist_ok=True)
    placed = []
    for item in dataset.files:
        target = directory / item.name
        if target.is_file() and sha256_of(target) == item.sha256:
            placed.append(target)
            continue
        url = dataset.base_url + item.name
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".part") as part:
            partial = Path(part.name)
            try:
                with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        part.write(block)
            except (urllib.error.URLError, OSError) as exc:
                partial.unlink(missing_ok=True)
                names = ", ".join(f.name for f in dataset.files)
                raise BenchmatrixError(
                    f"cannot download {url} ({getattr(exc, 'reason', exc)}). Without internet, place the official "
                    f"files {names} in {directory} (or use `data sample {name} --dir {directory}`)."
                ) from exc
        found = sha256_of(partial)
        if found != item.sha256:
            partial.unlink()
            raise BenchmatrixError(f"{url}: sha256 {found} does not match the expected {item.sha256}")
        partial.replace(target)
        placed.append(target)
    return placed
