"""One exception class per exit code, so the CLI maps failures to codes in one place and a CI log
can tell "slower" from "broken" from "not enough evidence" by the code alone.

docs/commands.md's exit-code table is this module; `tests/unit/cli/test_exit_codes.py` keeps them in step.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    REGRESSION = 1
    USAGE = 2
    INCONCLUSIVE = 3
    CELLS_FAILED = 4
    BUILD_FAILED = 5
    DOCTOR_FAILED = 6
    ENGINE_LOST = 7
    FAILED = 8
    HOST_BUSY = 9
    NOT_REPRODUCIBLE = 10
    INTERNAL = 70  # an uncaught exception: a bug in benchmatrix (BSD sysexits' EX_SOFTWARE)
    INTERRUPTED = 130


class BenchmatrixError(Exception):
    """Any other failure (a download, a checksum, a bundle); `exit_code` is what the CLI returns."""

    exit_code = ExitCode.FAILED


class UsageError(BenchmatrixError):
    """Bad input (spec, catalog, arguments, missing files): nothing was built or run."""

    exit_code = ExitCode.USAGE


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


class RegressionFound(BenchmatrixError):
    """`compare` / `regress` found a candidate slower, less accurate or failing where the baseline was fine."""

    exit_code = ExitCode.REGRESSION


class Inconclusive(BenchmatrixError):
    """`compare` / `regress` found no regression, but some pair had too few repeats to tell
    (unless `--allow-inconclusive`): too little evidence is not a pass."""

    exit_code = ExitCode.INCONCLUSIVE


class CellsFailed(BenchmatrixError):
    """`run`: at least one cell did not end `ok`; `compare` / `regress`: every cell of one side failed."""

    exit_code = ExitCode.CELLS_FAILED


class BuildFailed(BenchmatrixError):
    """`docker build` failed; carries the tail of the build log (and, in a comparison, the side)."""

    exit_code = ExitCode.BUILD_FAILED


class DoctorFailed(BenchmatrixError):
    """`doctor`: at least one check blocks a run."""

    exit_code = ExitCode.DOCTOR_FAILED


class EngineLostTwice(BenchmatrixError):
    """The backend lost contact again while retrying a cell: the run stops, resumable."""

    exit_code = ExitCode.ENGINE_LOST


class HostBusy(BenchmatrixError):
    """`run --strict-environment`: other work on the host's CPUs or GPUs would disturb the cells; nothing started."""

    exit_code = ExitCode.HOST_BUSY


class NotReproducible(BenchmatrixError):
    """`reproduce`: the stored cell cannot be run as it was (its image is gone or its tag names another
    image, its data changed, its stored configuration no longer rebuilds it); nothing was run."""

    exit_code = ExitCode.NOT_REPRODUCIBLE


class Interrupted(BenchmatrixError):
    """The user interrupted the run (Ctrl-C / SIGTERM)."""

    exit_code = ExitCode.INTERRUPTED
