"""Long steps (image builds, base bootstraps, bundle transfers, dataset downloads, cells) in a log.

A terminal shows rich's spinners and bars while a step runs; a pipe, a file or a CI log sees none of
them, and minutes pass in silence. So where the output is not a terminal, each long step prints one
line when it starts and one when it ends, with its duration; on a terminal it prints nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Optional

from rich.console import Console


@contextmanager
def step(what: str, console: Optional[Console]) -> Iterator[None]:
    """`[12:03:04] build X: started` … `[12:06:16] build X: done in 3 min 12 s` (or `failed after …`)
    on a console that is not a terminal; nothing on a terminal or without a console."""
    if console is None or console.is_terminal:
        yield
        return
    started = time.monotonic()
    _say(console, f"{what}: started")
    try:
        yield
    except BaseException:
        _say(console, f"{what}: failed after {duration(time.monotonic() - started)}")
        raise
    _say(console, f"{what}: done in {duration(time.monotonic() - started)}")


def duration(seconds: float) -> str:
    """4.2 s, 3 min 12 s, 1 h 05 min: as precise as a reader of a log needs."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _say(console: Console, text: str) -> None:
    console.print(f"[{datetime.now():%H:%M:%S}] {text}", markup=False, highlight=False, soft_wrap=True)
