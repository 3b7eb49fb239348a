"""`regress --bisect FW@GOOD FW@BAD`: which version of a catalog family first regressed against GOOD.

The versions GOOD … BAD come from a version family of the catalog (oldest first). Every step runs
GOOD against one version M in `regress`'s order-balanced rounds and asks the gate: a regression
means M is bad, no regression means M is good. A binary search between the last good and the
first bad version builds and measures about log2 N of the N versions; BAD itself is measured only
when every version the search measured was good (it is then the first bad, if it is bad at all).

Each step is `regress`'s gate (`regress.judge_rounds` at each planned look, `Settings.levels`):
three answers — not slower (M is good: the data rule out a slowdown of the threshold), regression
(M is bad), inconclusive. A step adds rounds to each planned look (`regress.looks`) while the gate
says INCONCLUSIVE. Still inconclusive at the cap, the search stops there, says between which
versions the change lies so far, and exits 3: it does not guess a side, since a wrong guess would
send every later step to the wrong half. A version whose image does not build, or whose cells all
fail, stops the search the same way with the gate's code (5, 4).

Error rates over the whole search: at most `steps_planned(N)` = ⌈log2(N-1)⌉ + 1 steps run. Each
step's gate gets alpha / steps_planned(N) as its alpha and spends it over its looks as `regress`
does (power family, `stats.look_alpha`): a step calls a regression of a version that is not slower
with chance at most alpha / steps, and passes a version slower by the threshold with chance at most
alpha / steps. The search answers wrongly only if some step does (a false "bad" or a false "good"
sends it to the wrong half), so by the union bound each error rate of the whole search stays at
most alpha; inconclusive steps stop the search and are no error.

The search's state (each measured version's rounds, verdict and times) is a JSON file in the
results folder, written after every round: run again with the same arguments and it resumes
without rebuilding or re-measuring what it has.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Protocol

from orchestrator.analysis.compare import (
    BrokenSide,
    Comparison,
    Outcome,
    Settings,
    headline,
)
from orchestrator.errors import UsageError
from orchestrator.spec.catalog import Catalog, Family
from orchestrator.store.queries import Selection, parse_selection

VERDICTS = (Outcome.NO_REGRESSION, Outcome.REGRESSION)  # the two a step must end with for the search to go on


@dataclass(frozen=True)
class Judgement:
    """What the gate said about one step: its outcome, its headline, and each pair's change."""

    outcome: Outcome
    summary: str
    changes: dict[str, float] = field(default_factory=dict)


def verdict(result: Comparison) -> Judgement:
    """The gate's outcome as the search reads it, with its headline and each pair's change."""
    changes = {pair.label: pair.change for pair in result.pairs if pair.change is not None}
    return Judgement(result.outcome, headline(result), changes)


@dataclass(frozen=True)
class SearchRange:
    """The family and the versions from GOOD to BAD, oldest first."""

    family: Family
    versions: tuple[str, ...]

    def selection(self, version: str) -> Selection:
        text = f"{self.family.framework}@{version}-{self.family.variant}"
        return Selection("build", text, self.family.framework, version, self.family.variant)


def search_range(catalog: Catalog, good_text: str, bad_text: str) -> SearchRange:
    """GOOD and BAD checked against the catalog's family before anything is built."""
    good, bad = parse_selection(good_text), parse_selection(bad_text)
    for flag, selection in (("GOOD", good), ("BAD", bad)):
        if selection.kind != "build":
            raise UsageError(f"--bisect {flag} {selection.text}: expected framework@version[-variant]")
    if good.framework != bad.framework:
        raise UsageError(f"--bisect {good_text} {bad_text}: both ends must be versions of one framework")
    if good.variant and bad.variant and good.variant != bad.variant:
        raise UsageError(f"--bisect {good_text} {bad_text}: both ends must be of one variant")
    (framework, good_version), (_, bad_version) = good.pinned(), bad.pinned()
    family = catalog.family(framework, good.variant or bad.variant)
    known = ", ".join(family.versions)
    for flag, selection in (("GOOD", good), ("BAD", bad)):
        if selection.version not in family.versions:
            raise UsageError(
                f"--bisect {flag} {selection.text}: version {selection.version} is not in the catalog's "
                f"{family.key} (versions, oldest first: {known})"
            )
    first, last = family.versions.index(good_version), family.versions.index(bad_version)
    if first == last:
        raise UsageError(f"--bisect {good_text} {bad_text}: GOOD and BAD are the same version; nothing to search")
    if first > last:
        raise UsageError(
            f"--bisect {good_text} {bad_text}: GOOD must be older than BAD in the {family.key} (oldest first: {known})"
        )
    return SearchRange(family, tuple(family.versions[first : last + 1]))


def steps_planned(versions: int) -> int:
    """The most steps a search over `versions` (GOOD … BAD) takes: the bisection of the versions
    after GOOD, plus BAD's own check when every version before it was good."""
    return math.ceil(math.log2(versions - 1)) + 1


def step_settings(base: Settings, versions: int, planned: tuple[int, ...]) -> Settings:
    """Each step's gate: alpha split over the search's steps; the gate spends its share over `planned` looks."""
    return replace(base, alpha=base.alpha / steps_planned(versions), looks=planned)


def bracket(versions: tuple[str, ...], verdicts: dict[str, Outcome]) -> tuple[int, int]:
    """Indices of the newest version known good (0: GOOD) and the oldest known or assumed bad."""
    good = [i for i, v in enumerate(versions) if verdicts.get(v) is Outcome.NO_REGRESSION]
    bad = [i for i, v in enumerate(versions) if verdicts.get(v) is Outcome.REGRESSION]
    return max(good, default=0), min(bad, default=len(versions) - 1)


def next_version(versions: tuple[str, ...], verdicts: dict[str, Outcome]) -> Optional[str]:
    """The version the search measures next; None when it is done or stopped (an unsettled step)."""
    if any(outcome not in VERDICTS for outcome in verdicts.values()):
        return None
    low, high = bracket(versions, verdicts)
    if high - low > 1:
        return versions[(low + high) // 2]
    return versions[high] if versions[high] not in verdicts else None


@dataclass(frozen=True)
class Conclusion:
    outcome: Outcome  # REGRESSION: first bad found; NO_REGRESSION: BAD is not slower; else the step's
    last_good: str
    first_bad: Optional[str]  # None when no version in the range regressed
    text: str


def conclude(versions: tuple[str, ...], verdicts: dict[str, Outcome]) -> Conclusion:
    """What the measured verdicts say: the first bad version, no regression, or where the search stopped."""
    low, high = bracket(versions, verdicts)
    stopped = next((v for v in versions if verdicts.get(v, VERDICTS[0]) not in VERDICTS), None)
    if stopped is not None:
        outcome = verdicts[stopped]
        return Conclusion(
            outcome,
            versions[low],
            None,
            f"stopped at {stopped} ({outcome.value}): the change lies after {versions[low]}, "
            f"at or before {versions[high]} (not narrowed further)",
        )
    if verdicts.get(versions[high]) is Outcome.REGRESSION:
        return Conclusion(
            Outcome.REGRESSION,
            versions[low],
            versions[high],
            f"first bad version: {versions[high]}; last good version: {versions[low]}",
        )
    if verdicts.get(versions[-1]) is Outcome.NO_REGRESSION:
        return Conclusion(
            Outcome.NO_REGRESSION, versions[-1], None, f"no regression: {versions[-1]} is not slower than {versions[0]}"
        )
    raise AssertionError("conclude() before the search ended")


@dataclass
class Step:
    """One measured version: its rounds (run ids), the gate's verdict once settled, and the times."""

    version: str
    runs: list[str] = field(default_factory=list)
    built: bool = False
    build_s: float = 0.0
    rounds_s: list[float] = field(default_factory=list)
    outcome: Optional[str] = None  # Outcome.name; None while rounds are still being added
    summary: str = ""
    changes: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> Optional[Outcome]:
        return Outcome[self.outcome] if self.outcome else None


@dataclass
class SearchState:
    """Everything a resumed search needs, saved after every build and round."""

    key: str
    versions: tuple[str, ...]
    steps: dict[str, Step] = field(default_factory=dict)

    def verdicts(self) -> dict[str, Outcome]:
        return {v: s.verdict for v, s in self.steps.items() if s.verdict is not None}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=1))
        temporary.replace(path)  # atomic: an interrupt never leaves half a state behind

    @classmethod
    def load(cls, path: Path, key: str, versions: tuple[str, ...]) -> SearchState:
        """The saved search of these arguments, or a new one."""
        if not path.is_file():
            return cls(key, versions)
        try:
            data = json.loads(path.read_text())
            steps = {version: Step(**step) for version, step in data["steps"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{path}: not a bisect state this version can read ({exc}); delete it to start over"
            ) from exc
        if data.get("key") != key:
            raise UsageError(f"{path}: the state of another search (its key differs); delete it to start over")
        return cls(key, versions, steps)


def state_key(search: SearchRange, **inputs: object) -> str:
    """What makes two searches the same one: the family's versions and every input to the verdicts."""
    payload = {"family": search.family.model_dump(), "versions": search.versions, **inputs}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class Bench(Protocol):
    """What the search needs from the machine (the real one: `regress`'s images and rounds)."""

    def build(self, version: str) -> Optional[BrokenSide]: ...

    def add_round(self, version: str, runs: list[str]) -> str: ...

    def judge(self, version: str, runs: list[str]) -> Judgement: ...


def measure(bench: Bench, step: Step, planned: tuple[int, ...], save: Callable[[], None]) -> Judgement:
    """The sequential stopping rule of one step: rounds up to each planned look, then the gate;
    stop at the first look that is not inconclusive, or at the last. Rounds a resumed step already
    has are kept, and looks it has passed are not taken again."""
    judgement: Optional[Judgement] = None
    for total in planned:
        if len(step.runs) > total:
            continue
        while len(step.runs) < total:
            started = time.perf_counter()
            step.runs.append(bench.add_round(step.version, list(step.runs)))
            step.rounds_s.append(round(time.perf_counter() - started, 1))
            save()
        judgement = bench.judge(step.version, list(step.runs))
        if judgement.outcome is not Outcome.INCONCLUSIVE:
            break
    if judgement is None:  # resumed with more rounds than the last look: judge what is there
        judgement = bench.judge(step.version, list(step.runs))
    return judgement


def search(bench: Bench, state: SearchState, planned: tuple[int, ...], save: Callable[[], None]) -> Conclusion:
    """Binary search over `state.versions`, measuring each version it needs once."""
    while (version := next_version(state.versions, state.verdicts())) is not None:
        step = state.steps.setdefault(version, Step(version))
        if not step.built:
            started = time.perf_counter()
            broken = bench.build(version)
            step.build_s = round(time.perf_counter() - started, 1)
            if broken is not None:
                step.outcome, step.summary = broken.outcome.name, str(broken)
                save()
                continue
            step.built = True
            save()
        judgement = measure(bench, step, planned, save)
        step.outcome, step.summary, step.changes = judgement.outcome.name, judgement.summary, judgement.changes
        save()
    return conclude(state.versions, state.verdicts())
