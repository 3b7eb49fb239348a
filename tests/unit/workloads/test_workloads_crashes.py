"""A native crash ends the workload by its signal with a Python traceback, whatever handler the
framework installed (MXNet's own SIGSEGV handler can hang)."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.conftest import REPO

CRASH_AFTER_A_FRAMEWORK_HANDLER = """
import os, signal, sys
from workloads.crashes import report_native_crashes
signal.signal(signal.SIGSEGV, lambda *_: sys.exit(255))  # stands in for a framework's own handler
{call}
os.kill(os.getpid(), signal.SIGSEGV)
"""


def crash(call: str) -> subprocess.CompletedProcess:
    script = CRASH_AFTER_A_FRAMEWORK_HANDLER.format(call=call)
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_the_process_dies_by_the_signal_with_a_python_traceback() -> None:
    ended = crash("report_native_crashes()")
    assert ended.returncode == -signal.SIGSEGV, ended.stderr
    assert "Fatal Python error: Segmentation fault" in ended.stderr
    assert 'File "<string>", line 6' in ended.stderr


def test_without_it_the_framework_handler_decides() -> None:
    assert crash("").returncode == 255
