"""`regress` without an engine: the looks of the sequential design, the alternating order, the specs, and
the gate's loop over faked rounds (stored as the runner stores them): early stop, doubling, the cap,
the design stored with the runs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console

from orchestrator.analysis.compare import Outcome, Settings, Verdict, method_note
from orchestrator.analysis.regress import RegressRequest, cap, gate, looks, prepare, regress_spec, round_order
from orchestrator.errors import UsageError
from orchestrator.metrics import Metric
from orchestrator.render.compare import rows_for_display
from orchestrator.run.runner import RunRequest, RunSummary
from orchestrator.store.database import Store
from orchestrator.store.queries import parse_selection
from tests.stores import add_run, cell

SPEC = Path(__file__).resolve().parents[3] / "matrices" / "regress.yaml"


def test_looks_double_up_to_the_cap():
    assert looks(5, None) == (5,)
    assert looks(2, 8) == (2, 4, 8)
    assert looks(5, 12) == (5, 10, 12)
    assert looks(3, 3) == (3,)


def test_more_repeats_than_the_default_cap_raise_the_cap_instead_of_failing():
    """`regress --repeats 30` without --max-repeats: one look after 30, not an error about the default 20."""
    assert looks(30, cap(30, None)) == (30,)
    assert looks(14, cap(14, None)) == (14, 20)
    assert cap(5, 8) == 8


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


class FakeRounds:
    """`runner.run_matrix` at its shape, without an engine: one run per call, the spec's frameworks'
    cells stored one by one in the spec's order (so the row ids record which build ran first), each
    workload's img/s from `speed(version, workload, round index)`."""

    def __init__(self, store: str, speed: Callable[[str, str, int], float]) -> None:
        self.store, self.speed, self.orders = Store(store), speed, []

    def __call__(self, request: RunRequest, console: Console) -> RunSummary:
        spec = yaml.safe_load(request.spec_path.read_text())
        index = len(self.orders)
        run_id = f"round{index:02d}"
        add_run(self.store, run_id, reference=spec["reference"])
        self.orders.append([f["version"] for f in spec["frameworks"]])
        assert request.repeats == 1 and request.filters.system == "cpu"
        for framework in spec["frameworks"]:
            variant = (framework.get("variants") or ["cpu"])[0]
            for workload in spec["workloads"]:
                speed = self.speed(framework["version"], workload["name"], index)
                self.store.record_cell(
                    cell(
                        run_id=run_id,
                        config_hash=f"{framework['version']}-{workload['name']}",
                        version=framework["version"],
                        variant=variant,
                        workload=workload["name"],
                        model=workload["model"],
                        image=f"benchmatrix/mxnet:{framework['version']}-{variant}",
                        metrics=[Metric("train_img_per_s", speed, "img/s")],
                    )
                )
        return RunSummary(run_id, Counter(ok=2 * len(spec["workloads"])))


def run_gate(tmp_path, speed, repeats=4, cap=20):
    request = RegressRequest(
        parse_selection("mxnet@1.9.1"),
        parse_selection("mxnet@1.6.0-mkl"),
        SPEC,
        "cpu",
        repeats,
        str(tmp_path / "results.db"),
        tmp_path,
        tmp_path,
        cap,
    )
    fake, console = FakeRounds(request.store, speed), Console(record=True, width=200)
    planned = looks(repeats, cap)
    result = gate(prepare(request), planned, Settings(), console, run_one=fake)
    return result, fake, console.export_text()


def noisy(slowdown: float) -> Callable[[str, str, int], float]:
    """The candidate (1.6.0) `slowdown` times slower, CV 1 % per cell, seeded by cell and round."""

    def speed(version: str, workload: str, index: int) -> float:
        rng = np.random.default_rng([index, version == "1.6.0", workload == "cnn"])
        return 1000 * math.exp(rng.normal(0, 0.01)) / (slowdown if version == "1.6.0" else 1.0)

    return speed


def test_the_gate_alternates_doubles_and_stops_at_the_first_conclusive_look(tmp_path):
    """Looks after 4, 8, 16, 20 rounds: 4 and 8 pairs cannot reach the spent levels, 16 can."""
    result, fake, said = run_gate(tmp_path, noisy(1.20))
    assert fake.orders == [["1.9.1", "1.6.0"], ["1.6.0", "1.9.1"]] * 8  # A B, B A, … round by round
    assert result.outcome is Outcome.REGRESSION and [p.verdict for p in result.pairs] == [Verdict.REGRESSION] * 2
    assert "not every pair is conclusive after 4 rounds: running up to 20" in said
    assert "not every pair is conclusive after 8 rounds" in said and "after 16 rounds" not in said
    assert result.design.endswith(
        "16 rounds, order alternating (A B, B A, …); looks planned after 4, 8, 16, 20 "
        "rounds; stopped after 16: every pair conclusive"
    )
    assert result.levels.passing == pytest.approx(0.05 * (0.8**3 - 0.4**3))
    assert result.levels.regression == pytest.approx(result.levels.passing / 2)  # 2 pairs, speed only


def test_the_gate_stops_at_the_cap_while_a_pair_is_inconclusive(tmp_path):
    result, fake, _ = run_gate(tmp_path, noisy(1.045), repeats=10, cap=20)
    assert len(fake.orders) == 20 and result.outcome is Outcome.INCONCLUSIVE
    assert result.design.endswith("stopped after 20: the last planned look, pairs still inconclusive")


def test_compare_on_the_runs_of_a_regress_gives_its_verdict_at_its_levels(tmp_path, cli):
    """The design is stored with every round's run; `compare` (newest regress by default) reuses it."""
    result, fake, _ = run_gate(tmp_path, noisy(1.20))
    store = Store(str(tmp_path / "results.db"))
    assert {str(store.design(run_id)) for run_id in store.run_ids()} == {
        str({"regress": result.design.split(":")[0].removeprefix("regress "), "looks": [4, 8, 16, 20]})
    }
    md = tmp_path / "compare.md"
    done = cli(
        "compare",
        "--store",
        store.where.removeprefix("sqlite:///"),
        "--baseline",
        "mxnet@1.9.1",
        "--candidate",
        "mxnet@1.6.0",
        "--markdown",
        str(md),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert md.read_text().splitlines()[2] == method_note(result)  # the same levels, not alpha at one look
    assert [line.split(" | ")[3:6] for line in md.read_text().splitlines() if line.startswith("| cpu/")] == [
        [row["slower by [CI]"], row["rounds"], row["p"]] for row in rows_for_display(result)
    ]
