"""One exit code per outcome: one class each in errors.py, the table in docs/commands.md, and `main`'s mapping."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import errors
from orchestrator.cli import main as cli_main
from orchestrator.errors import BenchmatrixError, ExitCode
from workloads.contract import WorkloadExit

REPO = Path(__file__).resolve().parents[3]
EXIT_CODES_DOC = REPO / "docs" / "commands.md"


def error_classes() -> list[type[BenchmatrixError]]:
    return [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, BenchmatrixError)]


def test_every_exit_code_but_ok_and_internal_has_one_class():
    owners = {c.exit_code: c for c in error_classes() if "exit_code" in vars(c)}
    assert len(owners) == len([c for c in error_classes() if "exit_code" in vars(c)])  # no code twice
    assert set(owners) == set(ExitCode) - {ExitCode.OK, ExitCode.INTERNAL}


def test_the_documented_table_lists_each_code_once():
    table = re.findall(r"^\| (\d+) \| `?(\w+)`? \|", EXIT_CODES_DOC.read_text(), flags=re.MULTILINE)
    assert sorted(int(code) for code, _ in table) == sorted(ExitCode)
    named = {int(code): name for code, name in table}
    for cls in error_classes():
        if "exit_code" in vars(cls):
            assert named[cls.exit_code] == cls.__name__


def test_no_number_means_one_thing_from_a_cell_and_another_from_the_orchestrator():
    """A cell's exit code lands in the store and logs beside the orchestrator's own: 2 is a usage
    error on both sides; every other code a workload ends with is one the orchestrator never uses."""
    shared = {int(code) for code in WorkloadExit} & {int(code) for code in ExitCode}
    assert shared == {ExitCode.OK, ExitCode.USAGE}
    assert WorkloadExit.OK == ExitCode.OK and WorkloadExit.USAGE == ExitCode.USAGE
    assert all(code < 128 for code in WorkloadExit)  # none reads as a signal (128 + N)


def handler_raising(exc: BaseException):
    def handler(args) -> None:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (errors.Inconclusive("x"), ExitCode.INCONCLUSIVE),
        (errors.BuildFailed("x"), ExitCode.BUILD_FAILED),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
        (ZeroDivisionError("a bug"), ExitCode.INTERNAL),
    ],
)
def test_main_maps_each_failure_to_its_code(monkeypatch, raised, code):
    parser = cli_main.build_parser()
    parsed = parser.parse_args(["plan"])
    parsed.handler = handler_raising(raised)
    monkeypatch.setattr(parser, "parse_args", lambda argv: parsed)
    monkeypatch.setattr(cli_main, "build_parser", lambda: parser)
    assert cli_main.main(["plan"]) == code


@pytest.mark.parametrize("table", [True, False], ids=["table", "json"])
def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(table):
    """`plan … | head`: more output than a pipe holds, a reader that stops early; exit 0, nothing on stderr."""
    argv = [sys.executable, "-m", "orchestrator", "plan", "--repeats", "100", *(() if table else ("--json",))]
    reader = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.read(200)  # what `head -c 200` takes, then it goes
    reader.stdout.close()
    stderr = reader.stderr.read().decode()
    assert reader.wait(timeout=120) == ExitCode.OK, stderr
    assert stderr == ""


def test_a_broken_pipe_that_is_not_stdout_is_still_a_bug(monkeypatch):
    """Only a closed stdout is quiet: EPIPE on any other pipe or socket keeps its traceback and code 70."""
    parser = cli_main.build_parser()
    parsed = parser.parse_args(["plan"])
    parsed.handler = handler_raising(BrokenPipeError("a socket"))
    monkeypatch.setattr(parser, "parse_args", lambda argv: parsed)
    monkeypatch.setattr(cli_main, "build_parser", lambda: parser)
    assert cli_main.main(["plan"]) == ExitCode.INTERNAL
