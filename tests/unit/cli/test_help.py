"""Every command and subcommand answers `--help` through the real parser (`main.build_parser`)."""

from __future__ import annotations

import argparse

import pytest

from orchestrator.cli.main import build_parser


def command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The parser's own path, then each subcommand's, depth first."""
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += command_paths(child, (*path, name))
    return found


PATHS = command_paths(build_parser())


def test_the_walk_finds_every_command_and_action():
    assert {path[0] for path in PATHS if path} == {
        "base", "images", "plan", "run", "results", "data", "bundle", "doctor", "run-cell",
        "report", "compare", "regress", "reproduce",
    }  # fmt: skip
    assert ("bundle", "load") in PATHS and ("images", "build") in PATHS and ("data", "fetch") in PATHS


@pytest.mark.parametrize("path", PATHS, ids=lambda path: " ".join(path) or "(top)")
def test_help_works(path, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*path, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m orchestrator {' '.join(path)}".rstrip())
