"""How a cell ended: one enum, its values the text the store keeps in `cells.status`."""

from __future__ import annotations

from enum import StrEnum


class CellStatus(StrEnum):
    OK = "ok"
    OOM = "oom"
    TIMEOUT = "timeout"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    RETRYABLE = "retryable"  # the engine failed the cell, not the workload: it runs again

    @property
    def text(self) -> str:
        """What a table shows where the cell's number would be (an ok cell shows its number)."""
        return _TEXT.get(self, self.value.capitalize())


_TEXT = {CellStatus.OK: "ok", CellStatus.OOM: "Out of Memory"}


# A cell that ended one of these ways ran to the end; `run --resume` runs the others again.
FINAL_STATUSES = frozenset({CellStatus.OK, CellStatus.OOM, CellStatus.TIMEOUT, CellStatus.ERROR})
