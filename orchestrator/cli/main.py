"""Command line: one parser built here from each command module's `register`, one function per
command, exceptions mapped to exit codes (`errors.ExitCode`)."""

from __future__ import annotations

import argparse
import io
import os
import select
import sys
import traceback
from typing import Optional

from rich.markup import escape

from orchestrator.cli import (
    base,
    bundle,
    compare,
    data,
    doctor,
    images,
    plan,
    regress,
    report,
    reproduce,
    results,
    run,
    run_cell,
)
from orchestrator.cli.output import errors
from orchestrator.errors import BenchmatrixError, ExitCode

# In the order `--help` lists them.
COMMANDS = (base, images, plan, run, results, data, bundle, doctor, run_cell, report, compare, regress, reproduce)


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (`plan | head`), not some other broken pipe."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return any(event & select.POLLERR for _, event in poller.poll(0))


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is handled below
    except BrokenPipeError:
        if not stdout_reader_gone():
            return _internal_error()
        # The reader took what it wanted: nothing more to say, and nothing left to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except BenchmatrixError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        errors.print("[bold red]interrupted[/]")
        return ExitCode.INTERRUPTED
    except Exception:  # a bug: its own code, so that CI never reads it as a verdict
        return _internal_error()
    return ExitCode.OK


def _internal_error() -> int:
    traceback.print_exc()
    errors.print(f"[bold red]internal error[/] (exit {ExitCode.INTERNAL}): please report the traceback above")
    return ExitCode.INTERNAL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator",
        description="Benchmark deep-learning frameworks across versions and systems, in containers.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
