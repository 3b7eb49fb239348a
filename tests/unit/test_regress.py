"""`regress` without an engine: the looks of the sequential design, the alternating order, the specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestrator.compare import parse_selection
from orchestrator.errors import UsageError
from orchestrator.regress import RegressRequest, looks, regress_spec, round_order

SPEC = Path(__file__).resolve().parents[2] / "matrices" / "regress.yaml"


def test_looks_double_up_to_the_cap():
    assert looks(5, None) == (5,)
    assert looks(2, 8) == (2, 4, 8)
    assert looks(5, 12) == (5, 10, 12)
    assert looks(3, 3) == (3,)


@pytest.mark.parametrize(
    ("repeats", "cap", "message"),
    [(0, None, "--repeats 0: expected 1 to 100"), (5, 4, "--max-repeats 4: expected 5"), (5, 101, "--max-repeats 101")],
)
def test_bad_looks_are_usage_errors(repeats, cap, message):
    with pytest.raises(UsageError, match=message):
        looks(repeats, cap)


def test_rounds_alternate():
    assert [round_order(i) for i in range(4)] == ["AB", "BA", "AB", "BA"]


def test_the_second_order_swaps_the_builds(tmp_path):
    request = RegressRequest(
        parse_selection("mxnet@1.9.1"), parse_selection("mxnet@1.6.0-mkl"), SPEC, "cpu", 2, "s", tmp_path, tmp_path
    )
    names = {
        order: [
            (f["version"], f.get("variants"))
            for f in yaml.safe_load(regress_spec(request, tmp_path, order).read_text())["frameworks"]
        ]
        for order in ("AB", "BA")
    }
    assert names == {"AB": [("1.9.1", None), ("1.6.0", ["mkl"])], "BA": [("1.6.0", ["mkl"]), ("1.9.1", None)]}
