"""The consoles every command prints to: results on stdout, errors and progress on stderr."""

from __future__ import annotations

import sys

from rich.console import Console


class CliConsole(Console):
    """A console whose closed pipe raises BrokenPipeError for `main` to handle (rich's own exits 1, silently)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


# Piped output (CI logs, files) gets wide tables instead of rich's 80-column default.
console = CliConsole(width=None if sys.stdout.isatty() else 250)
errors = CliConsole(stderr=True, width=None if sys.stderr.isatty() else 250)
