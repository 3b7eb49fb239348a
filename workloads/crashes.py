"""The same end to a native crash in every framework: Python's traceback, then death by the signal.

MXNet installs its own SIGSEGV handler, which prints a C++ stack trace with calls that are not safe in
a signal handler; a segfault early in training left the process hung in it in 4 of 12 tries here, so
the cell waited for its timeout instead of failing at once. Called after the framework is imported
(its handlers installed), this puts the default action back and lets `faulthandler` print the Python
stack before it: the process ends with 128 + the signal, which the orchestrator names.
"""

from __future__ import annotations

import faulthandler
import signal
import sys

FATAL_SIGNALS = (signal.SIGSEGV, signal.SIGFPE, signal.SIGABRT, signal.SIGBUS, signal.SIGILL)


def report_native_crashes() -> None:
    for fatal in FATAL_SIGNALS:
        signal.signal(fatal, signal.SIG_DFL)
    # the process's own stderr, even when captured (sys.stderr when it has none)
    faulthandler.enable(file=sys.__stderr__ or sys.stderr, all_threads=True)
