"""One exception class per exit code, so the CLI maps failures to codes in one place."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class BenchmatrixError(Exception):
    """Base class; `exit_code` is what the CLI returns when this escapes a command."""

    exit_code = EXIT_FAILED


class UsageError(BenchmatrixError):
    """Bad input (spec, catalog, arguments, missing files): nothing was built or run."""

    exit_code = EXIT_USAGE


class SpecError(UsageError):
    """A spec or catalog file is invalid; names the file, the key path and what was expected."""

    def __init__(self, file: str, key_path: str, expected: str) -> None:
        self.file, self.key_path, self.expected = file, key_path, expected
        where = f" at key '{key_path}'" if key_path else ""
        super().__init__(f"{file}{where}: {expected}")


class EngineUnavailable(UsageError):
    """No Docker engine answers; the message says how to start one."""


class ImageNotBuildable(UsageError):
    """A catalog entry whose stack cannot be installed here (e.g. TF 1.x needs Python <= 3.7)."""


class BuildFailed(BenchmatrixError):
    """`docker build` failed; carries the tail of the build log."""


class CellsFailed(BenchmatrixError):
    """The matrix finished but at least one cell did not end `ok`."""


class RegressionFound(BenchmatrixError):
    """`compare` / `regress` found a candidate slower, less accurate or failing where the baseline was fine."""


class Interrupted(BenchmatrixError):
    """The user interrupted the run (Ctrl-C / SIGTERM)."""

    exit_code = EXIT_INTERRUPTED
