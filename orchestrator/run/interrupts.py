"""Ctrl-C and SIGTERM during a run: stop the cells cleanly instead of dying mid-write.

While images build, a signal raises KeyboardInterrupt as usual (nothing half-written can result:
the build is abandoned, the run marked interrupted). While cells run, the handler only records the
request; the runner's loop notices it, stops the containers (grace period, then kill), stores the
cells in flight as interrupted and returns. Further signals while it stops are ignored, so a second
Ctrl-C cannot cut the clean-up short (SIGKILL still can; the next start then removes the orphans).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Optional

HANDLED = (signal.SIGINT, signal.SIGTERM)


class InterruptGuard:
    def __init__(self) -> None:
        self.requested: Optional[str] = None  # the signal's name, once one arrived
        self.deferred = False

    def handle(self, signum: int, _frame: Optional[FrameType]) -> None:
        if self.requested is not None:
            return
        self.requested = signal.Signals(signum).name
        if not self.deferred:
            raise KeyboardInterrupt


@contextmanager
def interrupt_guard() -> Iterator[InterruptGuard]:
    """Install the handlers for the duration (main thread only: elsewhere signals stay as they are)."""
    guard = InterruptGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = {sig: signal.signal(sig, guard.handle) for sig in HANDLED}
    try:
        yield guard
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
