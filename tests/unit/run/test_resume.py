"""`run --resume`: which stored cells count as done (their status is final and their image current)."""

from __future__ import annotations

from orchestrator.errors import BenchmatrixError
from orchestrator.run.runner import finished
from orchestrator.status import CellStatus
from tests.stores import row


def test_a_cell_that_ended_is_kept_and_an_interrupted_or_retryable_one_runs_again():
    kept = {status for status in CellStatus if finished(row(status=status, image_id="sha256:x"), "sha256:x")}
    assert kept == {CellStatus.OK, CellStatus.OOM, CellStatus.TIMEOUT, CellStatus.ERROR}


def test_a_cell_of_an_image_since_rebuilt_or_now_failing_runs_again():
    done = row(status=CellStatus.OK, image_id="sha256:x")
    assert not finished(done, "sha256:y")
    assert not finished(done, BenchmatrixError("pip failed"))
