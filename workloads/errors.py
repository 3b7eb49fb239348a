"""Failure classes the CLI maps to exit codes the orchestrator understands."""

from __future__ import annotations

import os
import re

# How each framework words running out of host or device memory.
_OOM_TEXT = re.compile(
    r"out of memory|RESOURCE_EXHAUSTED|OOM when allocating|std::bad_alloc|failed to allocate"
    r"|can't allocate memory|cannot allocate memory"
    r"|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|cudaErrorMemoryAllocation",
    re.IGNORECASE,
)
_OOM_TYPES = {"OutOfMemoryError", "ResourceExhaustedError"}


class RequestError(ValueError):
    """Bad arguments or a run that cannot be measured as asked (exit 2). Named apart from the
    orchestrator's ``UsageError``: the two sides share exit code 2, not a class."""


class DatasetError(RequestError):
    """A dataset file is missing or malformed; ``path`` names the file (exit 2)."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{os.fspath(path)}: {problem}")
        self.path = os.fspath(path)
        self.problem = problem


def oom_reason(exc: BaseException) -> str | None:
    """The line saying memory ran out, if ``exc`` or an exception it came from means that."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines = str(current).strip().splitlines()
        matching = [line.strip() for line in lines if _OOM_TEXT.search(line)]
        if matching:
            name = type(current).__name__
            return matching[0] if matching[0].startswith(name) else f"{name}: {matching[0]}"
        if isinstance(current, MemoryError) or type(current).__name__ in _OOM_TYPES:
            return f"{type(current).__name__}: {lines[0].strip() if lines else 'no message'}"
        current = current.__cause__ or current.__context__
    return None
