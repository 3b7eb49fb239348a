"""Long steps in a log: a start line and an end line with the duration where the output is not a
terminal (a pipe, a file, CI), nothing more on a terminal (its spinners and bars say it there)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from orchestrator import progress
from orchestrator.progress import duration, step

LINE = r"\[\d\d:\d\d:\d\d\] "


@pytest.fixture
def clock(monkeypatch):
    """`time.monotonic` as the step reads it: 1000 s at the start, then whatever the test sets."""
    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    return now


def log_console() -> Console:
    return Console(file=io.StringIO(), width=80)  # a StringIO is no terminal, as a pipe or a CI log


def test_a_step_in_a_log_prints_its_start_and_its_end_with_the_duration(clock):
    console = log_console()
    with step("build benchmatrix/tensorflow:2.16-cpu", console):
        assert re.fullmatch(LINE + "build benchmatrix/tensorflow:2.16-cpu: started\n", console.file.getvalue())
        clock[0] += 192
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(LINE + "build benchmatrix/tensorflow:2.16-cpu: done in 3 min 12 s", lines[1])


def test_a_step_that_fails_says_so_with_the_duration_and_lets_the_error_through(clock):
    console = log_console()
    with pytest.raises(KeyboardInterrupt), step("fetch cifar10", console):
        clock[0] += 4.25
        raise KeyboardInterrupt
    assert re.fullmatch(LINE + "fetch cifar10: failed after 4.2 s", console.file.getvalue().splitlines()[-1])


def test_a_terminal_or_no_console_gets_no_lines():
    terminal = Console(file=io.StringIO(), force_terminal=True)
    with step("build x", terminal), step("build y", None):
        pass
    assert terminal.file.getvalue() == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (59.94, "59.9 s"), (60, "1 min 0 s"), (192.4, "3 min 12 s"), (3899, "1 h 04 min")],
)
def test_durations_read_as_a_person_would_say_them(seconds, text):
    assert duration(seconds) == text
