"""Which GPUs a framework's CUDA build can run on.

A CUDA toolkit compiles kernels for the GPU architectures it knows, up to the newest compute
capability of its release; frameworks built with it ship kernels for those architectures only,
so a build for CUDA 10.0 has nothing an Ampere or Hopper GPU can run. The catalog names each GPU
image's CUDA version, and a run refuses a GPU newer than that version supports before it starts.
"""

from __future__ import annotations

from collections.abc import Iterable

# (first CUDA release, newest compute capability it compiles for, that architecture's name)
NEWEST_ARCHITECTURE: tuple[tuple[tuple[int, int], tuple[int, int], str], ...] = (
    ((10, 0), (7, 5), "Turing"),
    ((11, 0), (8, 0), "Ampere (A100)"),
    ((11, 1), (8, 6), "Ampere"),
    ((11, 8), (9, 0), "Hopper"),
    ((12, 8), (12, 0), "Blackwell"),
)


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def newest_supported(cuda: str) -> tuple[tuple[int, int], str]:
    """The newest compute capability a CUDA version compiles for, and its architecture's name."""
    version = _version(cuda)
    known = [(capability, name) for first, capability, name in NEWEST_ARCHITECTURE if first <= version]
    if not known:
        raise ValueError(f"CUDA {cuda} is older than any this tool knows (10.0)")
    return known[-1]


def support_note(cuda: str) -> str:
    """What a catalog listing says about a CUDA build's GPUs."""
    (major, minor), name = newest_supported(cuda)
    return f"CUDA {cuda}: runs on GPUs up to compute capability {major}.{minor} ({name}), not on newer ones"


def unsupported_gpus(cuda: str, gpus: Iterable[dict]) -> list[str]:
    """The host GPUs (hostinfo.gpus() entries) that a CUDA build cannot run on, each in words."""
    newest, name = newest_supported(cuda)
    return [
        f"GPU {gpu['index']} ({gpu['name']}, compute capability {gpu['compute_capability']}) is newer than "
        f"CUDA {cuda} supports (up to {newest[0]}.{newest[1]}, {name})"
        for gpu in gpus
        if gpu.get("compute_capability") and _version(gpu["compute_capability"]) > newest
    ]
