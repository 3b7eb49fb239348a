"""The bisect search with fake measurements: a monotone regression at each position, inconclusive
steps, the sequential stopping rule, resume after an interrupt; the family in the catalog; bad input."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest
from rich.console import Console

from orchestrator.analysis import bisect, regress
from orchestrator.analysis.bisect_bench import RegressBench
from orchestrator.analysis.compare import BrokenSide, Comparison, Outcome, Pair, Settings, Side, Verdict, method_note
from orchestrator.analysis.regress import RegressRequest
from orchestrator.analysis.stats import summarize
from orchestrator.cli.main import main
from orchestrator.errors import ExitCode, SpecError, UsageError
from orchestrator.render import bisect as bisect_text
from orchestrator.spec.catalog import load_catalog
from orchestrator.store.database import Store
from tests.unit.analysis.test_regress import SPEC, FakeRounds, noisy

VERSIONS = tuple(f"1.{i}.0" for i in range(9))


@dataclass
class FakeBench:
    """A bench whose version at index >= `first_bad` regresses; `inconclusive_until[v]` rounds make a
    version's gate say INCONCLUSIVE first (a noisy step); `broken` versions do not build."""

    versions: tuple[str, ...]
    first_bad: Optional[int]
    inconclusive_until: dict[str, int] = field(default_factory=dict)
    broken: frozenset[str] = frozenset()
    interrupt_after_rounds: Optional[int] = None
    builds: list[str] = field(default_factory=list)
    rounds: list[str] = field(default_factory=list)
    looks: list[tuple[str, int]] = field(default_factory=list)

    def build(self, version: str) -> Optional[BrokenSide]:
        self.builds.append(version)
        if version in self.broken:
            return BrokenSide("candidate", version, Outcome.BUILD_FAILED, "pip found no such version")
        return None

    def add_round(self, version: str, runs: list[str]) -> str:
        if self.interrupt_after_rounds is not None and len(self.rounds) == self.interrupt_after_rounds:
            raise KeyboardInterrupt
        self.rounds.append(version)
        return f"run-{version}-{len(runs)}"

    def judge(self, version: str, runs: list[str]) -> bisect.Judgement:
        self.looks.append((version, len(runs)))
        assert len(self.looks) < 100, "the search does not end"
        if len(runs) < self.inconclusive_until.get(version, 0):
            return bisect.Judgement(Outcome.INCONCLUSIVE, "too few rounds")
        bad = self.first_bad is not None and self.versions.index(version) >= self.first_bad
        outcome = Outcome.REGRESSION if bad else Outcome.NO_REGRESSION
        return bisect.Judgement(outcome, outcome.value, {"cpu/mxnet/mlp": -0.3 if bad else 0.01})


def run_search(bench: FakeBench, tmp_path: Path, planned=(3, 6, 12)) -> tuple[bisect.Conclusion, bisect.SearchState]:
    path = tmp_path / "state.json"
    state = bisect.SearchState.load(path, "key", bench.versions)
    return bisect.search(bench, state, planned, lambda: state.save(path)), state


@pytest.mark.parametrize("first_bad", range(1, len(VERSIONS)))
def test_finds_a_monotone_regression_at_every_position(first_bad, tmp_path):
    bench = FakeBench(VERSIONS, first_bad)
    conclusion, state = run_search(bench, tmp_path)
    assert conclusion.outcome is Outcome.REGRESSION
    assert conclusion.first_bad == VERSIONS[first_bad] and conclusion.last_good == VERSIONS[first_bad - 1]
    # Only what the binary search needs: at most ⌈log2(N-1)⌉ + 1 versions, each built and measured once.
    assert len(bench.builds) == len(set(bench.builds)) <= bisect.steps_planned(len(VERSIONS)) == 4
    assert len(bench.builds) + 1 <= math.ceil(math.log2(len(VERSIONS))) + 1 + 1  # + GOOD's image
    assert bench.rounds == [v for v in bench.builds for _ in range(3)]  # one look each: all conclusive
    assert {r["version"]: r["verdict"] for r in bisect_text.evidence_rows(state)}[VERSIONS[first_bad]] == "REGRESSION"


def test_no_regression_when_bad_is_not_slower(tmp_path):
    bench = FakeBench(VERSIONS, None)
    conclusion, _ = run_search(bench, tmp_path)
    assert conclusion.outcome is Outcome.NO_REGRESSION and conclusion.first_bad is None
    assert bench.builds[-1] == VERSIONS[-1]  # BAD is measured only when everything before it was good
    assert "no regression: 1.8.0 is not slower than 1.0.0" in conclusion.text


def test_bad_is_not_measured_when_an_earlier_version_is_bad(tmp_path):
    bench = FakeBench(VERSIONS, 2)
    run_search(bench, tmp_path)
    assert VERSIONS[-1] not in bench.builds


def test_two_versions_measure_bad_alone(tmp_path):
    bench = FakeBench(VERSIONS[:2], 1)
    conclusion, _ = run_search(bench, tmp_path)
    assert bench.builds == [VERSIONS[1]] and conclusion.first_bad == VERSIONS[1]
    assert bisect.steps_planned(2) == 1


def test_an_inconclusive_step_adds_rounds_until_it_is_conclusive(tmp_path):
    middle = VERSIONS[4]
    bench = FakeBench(VERSIONS, 3, inconclusive_until={middle: 6})
    conclusion, state = run_search(bench, tmp_path)
    assert conclusion.first_bad == VERSIONS[3]
    assert [look for look in bench.looks if look[0] == middle] == [(middle, 3), (middle, 6)]
    assert len(state.steps[middle].runs) == 6


def test_still_inconclusive_at_the_cap_stops_the_search_with_the_bracket(tmp_path):
    middle = VERSIONS[4]
    bench = FakeBench(VERSIONS, 3, inconclusive_until={middle: 99})
    conclusion, state = run_search(bench, tmp_path)
    assert [look for look in bench.looks if look[0] == middle] == [(middle, 3), (middle, 6), (middle, 12)]
    assert conclusion.outcome is Outcome.INCONCLUSIVE and conclusion.first_bad is None
    assert bench.builds == [middle]  # nothing measured past an unsettled step
    assert "stopped at 1.4.0 (INCONCLUSIVE): the change lies after 1.0.0, at or before 1.8.0" in conclusion.text


def test_a_version_that_does_not_build_stops_the_search_with_the_build_code(tmp_path):
    bench = FakeBench(VERSIONS, 6, broken=frozenset({VERSIONS[6]}))
    conclusion, state = run_search(bench, tmp_path)
    assert conclusion.outcome is Outcome.BUILD_FAILED
    assert state.steps[VERSIONS[6]].runs == []  # nothing ran for it
    assert "stopped at 1.6.0 (BUILD FAILED): the change lies after 1.4.0, at or before 1.8.0" in conclusion.text


def test_interrupted_search_resumes_without_rebuilding_or_remeasuring(tmp_path):
    first = FakeBench(VERSIONS, 5, inconclusive_until={VERSIONS[6]: 6}, interrupt_after_rounds=7)
    with pytest.raises(KeyboardInterrupt):
        run_search(first, tmp_path)
    assert first.builds == [VERSIONS[4], VERSIONS[6]] and len(first.rounds) == 7
    second = FakeBench(VERSIONS, 5, inconclusive_until={VERSIONS[6]: 6})
    conclusion, state = run_search(second, tmp_path)
    assert conclusion.first_bad == VERSIONS[5]
    assert second.builds == [VERSIONS[5]]  # 1.4 and 1.6 were built before the interrupt
    # 1.6 had 4 of its 6 rounds: it runs the other 2, the look after 3 rounds is not taken again.
    assert second.rounds == [VERSIONS[6]] * 2 + [VERSIONS[5]] * 3
    assert [look for look in second.looks if look[0] == VERSIONS[6]] == [(VERSIONS[6], 6)]
    assert state.steps[VERSIONS[6]].runs[:4] == [f"run-{VERSIONS[6]}-{i}" for i in range(4)]


def test_a_finished_search_reruns_nothing(tmp_path):
    run_search(FakeBench(VERSIONS, 3), tmp_path)
    again = FakeBench(VERSIONS, 3)
    conclusion, _ = run_search(again, tmp_path)
    assert conclusion.first_bad == VERSIONS[3] and again.builds == again.rounds == again.looks == []


def test_a_state_of_another_search_is_refused(tmp_path):
    path = tmp_path / "state.json"
    bisect.SearchState("one", VERSIONS).save(path)
    with pytest.raises(UsageError, match="another search"):
        bisect.SearchState.load(path, "two", VERSIONS)
    path.write_text("{")
    with pytest.raises(UsageError, match="not a bisect state"):
        bisect.SearchState.load(path, "one", VERSIONS)


def test_stopping_rule_looks_at_each_planned_total_and_stops_at_the_first_conclusive():
    bench = FakeBench(VERSIONS, 0, inconclusive_until={"1.3.0": 5})
    step = bisect.Step("1.3.0")
    judgement = bisect.measure(bench, step, (2, 4, 8, 16), lambda: None)
    assert judgement.outcome is Outcome.REGRESSION
    assert bench.looks == [("1.3.0", 2), ("1.3.0", 4), ("1.3.0", 8)] and len(step.runs) == 8
    assert len(step.rounds_s) == 8


def test_steps_planned_is_the_bisection_plus_the_bad_check():
    assert [bisect.steps_planned(n) for n in (2, 3, 4, 5, 9, 10, 17)] == [1, 2, 3, 3, 4, 5, 5]


# The family in the catalog and bad input ------------------------------------------------------------------


def test_the_catalog_family_expands_into_validated_entries():
    catalog = load_catalog()
    family = catalog.family("mxnet", "cpu")
    assert family.versions[0] == "1.6.0" and family.versions[-1] == "1.9.1"
    entry = catalog.find("mxnet", "1.7.0.post2", "cpu")[0]
    assert entry.pip[0] == "mxnet==1.7.0.post2" and entry.description.startswith("MXNet 1.7.0.post2 (Gluon)")


def family_catalog(tmp_path: Path, body: str) -> Path:
    """The real catalog with one more family (variant `test`), whose keys after `base` are `body`."""
    family = f"  - framework: mxnet\n    variant: test\n    base: bullseye\n{body}\n"
    path = tmp_path / "catalog.yaml"
    path.write_text(Path("images/catalog.yaml").read_text().replace("\nimages:\n", f"\n{family}\nimages:\n", 1))
    return path


VALID = ['    versions: ["1.6.0", "1.7.0.post2"]', '    pip: ["mxnet=={version}"]']


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({}, None),
        ({1: '    pip: ["mxnet=={version}; rm -rf /"]'}, "version 1.6.0: pip.0: String should match pattern"),
        ({1: '    pip: ["mxnet==1.9.1"]'}, "no 'pip' requirement names {version}"),
        ({0: '    versions: ["1.6.0", "1.6.0"]'}, "listed twice"),
        ({2: '    pins: {"2.0.0": {pip: ["numpy<2"]}}'}, "'pins' names versions not in 'versions': 2.0.0"),
        ({2: '    pins: {"1.6.0": {env: {X: "a b"}}}'}, "families.1.pins.1.6.0.env.X"),
        ({0: '    versions: ["1.6.0", "1.7.0 RUN curl"]'}, "families.1.versions.1"),
        ({0: '    versions: ["1.6.0"]'}, "families.1.versions"),
        ({2: "    shell: true"}, "at key 'families.1.shell': unknown key"),
    ],
)
def test_family_values_are_validated_like_other_catalog_values(tmp_path, edit, expected):
    lines = VALID + [""]
    for index, line in edit.items():
        lines[index] = line
    path = family_catalog(tmp_path, "\n".join(line for line in lines if line))
    if expected is None:
        assert load_catalog(path).find("mxnet", "1.7.0.post2", "test")[0].pip == ["mxnet==1.7.0.post2"]
        return
    with pytest.raises(SpecError) as caught:
        load_catalog(path)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("good", "bad", "expected"),
    [
        ("mxnet@1.6.0", "mxnet@1.6.0", "GOOD and BAD are the same version"),
        ("mxnet@1.5.0", "mxnet@1.9.1", "version 1.5.0 is not in the catalog's family mxnet-cpu"),
        ("mxnet@1.6.0", "mxnet@2.0.0", "version 2.0.0 is not in the catalog's family mxnet-cpu"),
        ("mxnet@1.9.1", "mxnet@1.6.0", "GOOD must be older than BAD"),
        ("mxnet@1.6.0-mkl", "mxnet@1.9.1-mkl", "no version family of mxnet-mkl in the catalog"),
        ("mxnet@1.6.0", "tensorflow@2.21.0", "both ends must be versions of one framework"),
        ("20261122-231006-f60c6c", "mxnet@1.9.1", "expected framework@version"),
    ],
)
def test_bad_bisect_ranges_exit_2_before_anything_starts(good, bad, expected, tmp_path, capsys):
    code = main(["regress", "--bisect", good, bad, "--store", str(tmp_path / "r.db"), "--results-dir", str(tmp_path)])
    assert code == ExitCode.USAGE and expected in capsys.readouterr().err
    assert not (tmp_path / "bisect").exists() and not (tmp_path / "r.db").exists()


def test_search_range_is_the_family_slice():
    found = bisect.search_range(load_catalog(), "mxnet@1.7.0.post2", "mxnet@1.9.1-cpu")
    assert found.versions == ("1.7.0.post2", "1.8.0.post0", "1.9.0", "1.9.1")
    assert found.selection("1.9.0").text == "mxnet@1.9.0-cpu"


def test_regress_without_sides_or_bisect_exits_2(capsys):
    assert main(["regress"]) == ExitCode.USAGE
    assert "regress needs --baseline and --candidate, or --bisect" in capsys.readouterr().err
    assert main(["regress", "--bisect", "mxnet@1.6.0", "mxnet@1.9.1", "--baseline", "mxnet@1.6.0"]) == ExitCode.USAGE


def test_the_injected_step_delay_needs_the_explicit_test_flag(monkeypatch):
    from workloads import timing

    monkeypatch.setenv(timing.TEST_STEP_DELAY, "0.5")
    monkeypatch.delenv(timing.TEST_HOOKS, raising=False)
    assert timing.injected_step_delay() == 0.0  # a stray variable never slows a real run
    monkeypatch.setenv(timing.TEST_HOOKS, "1")
    assert timing.injected_step_delay() == 0.5
    slept = []
    monkeypatch.setattr(timing.time, "sleep", slept.append)
    recorder = timing.Recorder(1, window_steps=100, log=lambda line: None)
    recorder.start_epoch()
    recorder.step(32)
    assert slept == [0.5]
    monkeypatch.setenv(timing.TEST_STEP_DELAY, "half a second")
    with pytest.raises(ValueError, match="BENCHMATRIX_TEST_STEP_DELAY_S='half a second': expected seconds"):
        timing.injected_step_delay()


def comparison(*verdicts: Verdict) -> Comparison:
    side = Side(Counter(ok=3), summarize([1.0, 1.1, 1.2]), None)
    pairs = [Pair(f"cpu/mxnet/w{i}/bs32/e1", side, side, v, -0.01, 0.4) for i, v in enumerate(verdicts)]
    return Comparison("mxnet@1.6.0", "mxnet@1.7.0", Settings(), pairs, [], [])


def test_a_step_reads_the_gates_three_answers():
    """Good only when every pair is not slower (the data rule out the threshold); bad on any regression."""
    assert bisect.verdict(comparison(Verdict.NOT_SLOWER, Verdict.NOT_SLOWER)).outcome is Outcome.NO_REGRESSION
    assert bisect.verdict(comparison(Verdict.NOT_SLOWER, Verdict.INCONCLUSIVE)).outcome is Outcome.INCONCLUSIVE
    assert bisect.verdict(comparison(Verdict.INCONCLUSIVE, Verdict.REGRESSION)).outcome is Outcome.REGRESSION


def test_allow_inconclusive_and_junit_are_refused_with_bisect(capsys):
    for extra in (["--allow-inconclusive"], ["--junit", "j.xml"]):
        assert main(["regress", "--bisect", "mxnet@1.6.0", "mxnet@1.9.1", *extra]) == ExitCode.USAGE
    assert "--junit: a bisect writes no JUnit file" in capsys.readouterr().err


def test_each_step_gets_its_share_of_alpha_and_spends_it_over_its_looks():
    planned = (14, 20)
    settings = bisect.step_settings(Settings(alpha=0.05), versions=9, planned=planned)
    assert settings.alpha == pytest.approx(0.05 / 4) and settings.looks == planned  # 4 steps
    spent = [settings.levels(total, tests=2) for total in planned]
    assert sum(level.passing for level in spent) == pytest.approx(0.05 / 4)  # the step's share over its looks
    assert spent[0].regression == pytest.approx(spent[0].passing / 2)  # Bonferroni over the step's tests
    assert bisect.step_settings(Settings(alpha=0.05), versions=2, planned=(20,)).alpha == pytest.approx(0.05)


def test_compare_on_a_steps_runs_gives_the_steps_verdict_at_its_levels(tmp_path, cli):
    """The real bench's rounds store the step's design (its looks and its share of alpha), so
    `compare` on them (newest regress by default) judges them as the step did."""
    search = bisect.search_range(load_catalog(), "mxnet@1.6.0", "mxnet@1.9.1")
    planned = (10, 20)
    settings = bisect.step_settings(Settings(), len(search.versions), planned)
    store = str(tmp_path / "results.db")
    request = RegressRequest(
        search.selection("1.6.0"), search.selection("1.9.1"), SPEC, "cpu", 10, store, tmp_path, tmp_path, 20
    )
    slow = noisy(1.20)  # the "candidate" of test_regress's fake is 1.6.0: here the step's version

    def speed(version: str, workload: str, index: int) -> float:
        return slow("1.6.0" if version == "1.8.0.post0" else "other", workload, index)

    fake = FakeRounds(store, speed)
    bench = RegressBench(search, request, settings, "bisect-test", Console(width=200), run_one=fake)
    step = bisect.Step("1.8.0.post0")
    judged = bisect.measure(bench, step, planned, lambda: None)
    assert judged.outcome is Outcome.REGRESSION and len(step.runs) == 20  # 10 rounds cannot reach alpha / 4 spent
    assert Store(store).design(step.runs[0]) == {
        "regress": "bisect-test-1.8.0.post0",
        "looks": [10, 20],
        "alpha": settings.alpha,
    }
    step_result = regress.judge_rounds(bench.rounds("1.8.0.post0"), settings)
    md = tmp_path / "compare.md"
    done = cli(
        "compare",
        "--store",
        store,
        "--baseline",
        "mxnet@1.6.0",
        "--candidate",
        "mxnet@1.8.0.post0",
        "--markdown",
        str(md),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert md.read_text().splitlines()[2] == method_note(step_result)  # alpha / 4 steps, not alpha
