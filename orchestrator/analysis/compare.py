"""Is the candidate slower, less accurate or failing where the baseline was fine?

Selections (`framework@version[-variant]`, a run id, an image id or tag; store/queries.py) pick two
sets of stored cells; cells are paired on everything but the selected dimension. Per pair, in log space with
"slower by tau" meaning a shift of log(1 + tau) for time and throughput alike, there are three
answers: *not slower* when the data rule out a slowdown of the threshold or more (the upper
confidence bound is below it), *regression* when they show a slowdown (the lower bound is above 0)
and the estimate is at or beyond the threshold, else *inconclusive* — with the reason and the
rounds that would settle it. Rounds of `regress` (alternating A B, B A) are judged on the means of
consecutive rounds of opposite orders (an order effect cancels) with the Hodges-Lehmann estimate
and the Wilcoxon signed-rank test, an outlying (stalled) round named and its pair left out; other
selections on the pooled repeats with the Mann-Whitney U test. The pass side needs no split over
pairs (the gate passes only when every pair does: an intersection-union test); the regression side
is split over the gate's tests (Bonferroni), and both over the planned looks (alpha spending).
Failed repeats never enter a median; a status the baseline never had is a regression of its own.
A side whose image never built, or whose cells all failed, is broken: nothing is compared.

Everything here but `stored_design` is pure (rows in, verdicts out); render/compare.py writes the
outputs (golden-tested). Which way a metric is better comes from the registry (orchestrator/metrics.py).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from typing import Any, Literal, Optional

import numpy as np
from numpy.typing import ArrayLike

from orchestrator.analysis.stats import (
    Shift,
    Summary,
    Test,
    look_alpha,
    p_rank_sum,
    pair_means,
    paired_shift,
    pairs_needed,
    round_z,
    smallest_rank_sum_p,
    smallest_signed_rank_p,
    summarize,
    unpaired_shift,
)
from orchestrator.errors import UsageError
from orchestrator.metrics import ACCURACY, DISTURBED, METRICS, SPEED, SPEED_METRICS, higher_is_better
from orchestrator.status import CellStatus
from orchestrator.store.database import Store
from orchestrator.store.rows import CellRow

BUILD_FIELDS = ("framework", "version", "variant", "image")
IDENTITY_FIELDS = ("system", "framework", "workload", "model", "dataset", "batch_size", "epochs", "options")


class Verdict(Enum):
    REGRESSION = "regression"
    NEW_FAILURE = "new failure"
    ACCURACY_REGRESSION = "accuracy regression"
    INCONCLUSIVE = "inconclusive"
    IMPROVEMENT = "improvement"
    NOT_SLOWER = "not slower"
    FIXED = "fixed"
    FAILING_IN_BOTH = "failing in both"


FAILING = frozenset({Verdict.REGRESSION, Verdict.NEW_FAILURE, Verdict.ACCURACY_REGRESSION})
# Pairs with nothing to judge on one side; neither a pass nor a failure of the gate.
UNJUDGED = frozenset({Verdict.FIXED, Verdict.FAILING_IN_BOTH})


class Outcome(Enum):
    """The comparison as a whole, worst first: the headline and the exit code state the worst."""

    BUILD_FAILED = "BUILD FAILED"
    CELLS_FAILED = "CELLS FAILED"
    REGRESSION = "REGRESSION"
    INCONCLUSIVE = "INCONCLUSIVE"
    NO_REGRESSION = "no regression"


SideName = Literal["baseline", "candidate"]  # which half of a comparison


@dataclass(frozen=True)
class Settings:
    metric: str = SPEED
    threshold: float = 0.05  # the slowdown that matters: "slower by tau" is a log shift of log(1 + tau)
    alpha: float = 0.05  # each error rate of the whole gate, over its looks and pairs
    accuracy_tolerance: float = 0.02  # absolute drop of median accuracy that matters
    allow_inconclusive: bool = False  # an inconclusive pair passes only when the user says so
    looks: tuple[int, ...] = ()  # rounds after which a sequential `regress` planned to look; () one look

    def __post_init__(self) -> None:
        if self.metric not in SPEED_METRICS:
            raise UsageError(f"--metric {self.metric}: expected one of {', '.join(SPEED_METRICS)}")
        for name, value in (("threshold", self.threshold), ("alpha", self.alpha)):
            if not 0 < value < 1:
                raise UsageError(f"--{name} {value}: expected a number between 0 and 1")
        if not 0 <= self.accuracy_tolerance < 1:
            raise UsageError(f"--accuracy-tolerance {self.accuracy_tolerance}: expected a number in [0, 1)")

    @property
    def margin(self) -> float:
        return math.log1p(self.threshold)

    def levels(self, rounds: int, tests: int) -> Levels:
        """The levels of a look after `rounds` rounds (0: no rounds) in a gate of `tests` regression tests."""
        spent = look_alpha(self.alpha, self.looks, rounds) if self.looks and rounds else self.alpha
        return Levels(passing=spent, regression=spent / max(tests, 1))


@dataclass(frozen=True)
class Levels:
    """One look's one-sided levels. Passing: not split over pairs — the gate passes only when every
    pair passes, so a slower candidate gets through only if its slower pair does (intersection-union).
    Regression: split over the gate's tests (Bonferroni), so A/A calls a regression in <= alpha of gates."""

    passing: float
    regression: float


@dataclass(frozen=True)
class Side:
    """One side of a pair: every repeat's status, and the summaries of the ok repeats only."""

    statuses: Counter
    metric: Optional[Summary]
    accuracy: Optional[Summary]
    values: tuple[float, ...] = ()
    accuracies: tuple[float, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


@dataclass(frozen=True)
class Pair:
    label: str
    baseline: Side
    candidate: Side
    verdict: Verdict
    change: Optional[float] = None  # the candidate's slowdown exp(estimate) - 1 (negative: faster)
    p_value: Optional[float] = None  # of the verdict's own test (speed, or accuracy for an accuracy regression)
    notes: tuple[str, ...] = field(default_factory=tuple)
    shift: Optional[Shift] = None
    rounds: str = ""

    @property
    def failing(self) -> bool:
        return self.verdict in FAILING

    @property
    def settled(self) -> bool:
        """More rounds could change the answer only of an inconclusive pair."""
        return self.verdict is not Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class BrokenSide:
    """A side that cannot be compared: its image never built, or none of its cells ran ok."""

    side: SideName
    selection: str
    outcome: Literal[Outcome.BUILD_FAILED, Outcome.CELLS_FAILED]
    detail: str

    def __str__(self) -> str:
        return f"{self.side} {self.selection} is broken: {self.detail}"


@dataclass(frozen=True)
class Comparison:
    baseline: str
    candidate: str
    settings: Settings
    pairs: list[Pair]
    only_baseline: list[str]
    only_candidate: list[str]
    broken: tuple[BrokenSide, ...] = ()
    design: str = ""  # how the repeats came about (regress: rounds, order, looks)
    levels: Optional[Levels] = None  # of the look the pairs were judged at

    @property
    def regressions(self) -> list[Pair]:
        return [pair for pair in self.pairs if pair.failing]

    @property
    def inconclusive(self) -> list[Pair]:
        return [pair for pair in self.pairs if pair.verdict is Verdict.INCONCLUSIVE]

    @property
    def settled(self) -> bool:
        return bool(self.broken) or all(pair.settled for pair in self.pairs)

    @property
    def outcome(self) -> Outcome:
        if self.broken:
            return min((b.outcome for b in self.broken), key=list(Outcome).index)
        if self.regressions:
            return Outcome.REGRESSION
        if self.inconclusive and not self.settings.allow_inconclusive:
            return Outcome.INCONCLUSIVE
        return Outcome.NO_REGRESSION


@dataclass(frozen=True)
class StoredDesign:
    """What a `regress` stored with its rounds' runs: its id and planned looks."""

    name: str
    looks: tuple[int, ...]
    alpha: Optional[float] = None  # a bisect step's share of alpha; None: the user's

    def __str__(self) -> str:
        alpha = f", alpha {self.alpha:.4g}" if self.alpha is not None else ""
        return (
            f"runs of regress {self.name}, judged at the levels of its design "
            f"(looks planned after {', '.join(map(str, self.looks))} rounds{alpha}, stored with the runs)"
        )

    def applied(self, settings: Settings) -> Settings:
        """`settings` as this design's gate judged: its looks, and its alpha when it stored one."""
        return replace(settings, looks=self.looks, alpha=self.alpha if self.alpha is not None else settings.alpha)


def stored_design(store: Store, runs: list[str]) -> Optional[StoredDesign]:
    """The design of these runs when all are rounds of one `regress`, so that `compare` on them
    spends alpha as `regress` did; None otherwise (one look at alpha)."""
    designs = [design for run_id in runs if (design := store.design(run_id))]
    if not designs or len(designs) < len(runs) or len({d["regress"] for d in designs}) != 1:
        return None
    return StoredDesign(designs[0]["regress"], tuple(designs[0]["looks"]), designs[0].get("alpha"))


def broken_side(
    rows: list[CellRow], side_name: SideName, selection: str
) -> Optional[BrokenSide]:
    """A side whose image never built (its cells are stored as errors without an image id), or
    whose cells all failed: its "fixed" pairs would approve a build that never ran."""
    unbuilt = sorted({row.image for row in rows if row.status == CellStatus.ERROR and not row.image_id})
    if unbuilt:
        why = next(row.notes[0] for row in rows if row.image == unbuilt[0] and row.notes)
        return BrokenSide(side_name, selection, Outcome.BUILD_FAILED, f"{', '.join(unbuilt)} never built ({why})")
    if rows and all(row.status != CellStatus.OK for row in rows):
        statuses = " ".join(f"{status}×{n}" for status, n in sorted(Counter(row.status for row in rows).items()))
        return BrokenSide(side_name, selection, Outcome.CELLS_FAILED, f"all {len(rows)} cells failed ({statuses})")
    return None


def compare(
    baseline_rows: list[CellRow],
    candidate_rows: list[CellRow],
    kind: str,
    settings: Settings,
    baseline: str,
    candidate: str,
) -> Comparison:
    """Pair cells on everything but the selected dimension and judge each pair.

    A run selection pairs on the whole cell config; a build or image selection on all but the
    build (version, variant, image) and, when the two sides are different frameworks, also the
    framework and its options ("should we move from X to Y?").
    """
    broken = tuple(
        found
        for found in (
            broken_side(baseline_rows, "baseline", baseline),
            broken_side(candidate_rows, "candidate", candidate),
        )
        if found
    )
    if broken:
        return Comparison(baseline, candidate, settings, [], [], [], broken)
    ignored = {"config_hash", "repeat", "plugins"}  # plugins: where their folders were; plugin_digests is what
    if kind != "run":
        ignored |= set(BUILD_FIELDS) - {"framework"}
        if {row.framework for row in baseline_rows} != {row.framework for row in candidate_rows}:
            ignored |= {"framework", "options"}
    base_groups, cand_groups = _group(baseline_rows, ignored), _group(candidate_rows, ignored)
    matched = [key for key in base_groups if key in cand_groups]
    shared = {row.run_id for row in baseline_rows} & {row.run_id for row in candidate_rows}
    levels = settings.levels(len(shared), sum(_tests(base_groups[key][0], cand_groups[key][0]) for key in matched))
    pairs = sorted(
        (
            judge(
                _pair_label(base_groups[key][0][0], cand_groups[key][0][0]),
                base_groups[key][0],
                cand_groups[key][0],
                settings,
                levels,
            )
            for key in matched
        ),
        key=lambda pair: pair.label,
    )
    return Comparison(
        baseline=baseline,
        candidate=candidate,
        settings=settings,
        pairs=pairs,
        only_baseline=sorted(label for key, (_, label) in base_groups.items() if key not in cand_groups),
        only_candidate=sorted(label for key, (_, label) in cand_groups.items() if key not in base_groups),
        levels=levels,
    )


def _tests(baseline_rows: list[CellRow], candidate_rows: list[CellRow]) -> int:
    """The regression tests a pair adds to the gate's family: speed, and accuracy where both sides have it."""
    has_accuracy = all(
        any(name in row.metrics for row in rows for name in ACCURACY) for rows in (baseline_rows, candidate_rows)
    )
    return 1 + has_accuracy


def _group(rows: list[CellRow], ignored: set[str]) -> dict[tuple, tuple[list[CellRow], str]]:
    groups: dict[tuple, tuple[list[CellRow], str]] = {}
    for row in rows:
        identity = {name: getattr(row, name) for name in (*IDENTITY_FIELDS, *BUILD_FIELDS)} | (row.config or {})
        key = tuple(sorted((k, repr(v)) for k, v in identity.items() if k not in ignored))
        groups.setdefault(key, ([], _label(row)))[0].append(row)
    return groups


def _label(row: CellRow) -> str:
    options = ",".join(f"{k}={v}" for k, v in sorted((row.options or {}).items()))
    return f"{row.system}/{row.framework}/{row.workload}/bs{row.batch_size}/e{row.epochs}" + (
        f"/{options}" if options else ""
    )


def _pair_label(base: CellRow, cand: CellRow) -> str:
    """The baseline's label; across frameworks both sides' (their options differ, so neither's)."""
    if base.framework == cand.framework:
        return _label(base)
    return _label(replace(base, framework=f"{base.framework}→{cand.framework}", options=None))


INVALID = "no measurement"  # the status of an ok repeat whose value is 0, negative or not finite


def side(rows: list[CellRow], metric: str) -> Side:
    ok = [row for row in rows if row.status == CellStatus.OK]
    values = [row.metrics[metric] for row in ok if _measured(row, metric)]
    accuracy_name = next((name for name in ACCURACY if any(name in row.metrics for row in ok)), None)
    accuracies = [row.metrics[accuracy_name] for row in ok if accuracy_name in row.metrics]
    invalid = {id(row) for row in ok if metric in row.metrics and not _measured(row, metric)}
    return Side(
        Counter(INVALID if id(row) in invalid else row.status for row in rows),
        summarize(values),
        summarize(accuracies),
        tuple(values),
        tuple(accuracies),
    )


def judge(
    label: str,
    baseline_rows: list[CellRow],
    candidate_rows: list[CellRow],
    settings: Settings,
    levels: Optional[Levels] = None,
) -> Pair:
    """One pair's verdict at this look's `levels` (default: one look, a gate of one test). Disturbed
    repeats (other work on the cell's CPUs or GPUs, issue 17) are left out and the notes name them."""
    left_out = {row.id: row for row in [*baseline_rows, *candidate_rows] if row.metrics.get(DISTURBED)}
    pair = _judge_kept(
        label,
        [row for row in baseline_rows if row.id not in left_out],
        [row for row in candidate_rows if row.id not in left_out],
        settings,
        levels or settings.levels(0, 1),
    )
    if not left_out:
        return pair
    named = ", ".join(f"{_label(row)} repeat {row.repeat} of run {row.run_id}" for row in left_out.values())
    return replace(pair, notes=(f"left out, disturbed: {named}", *pair.notes))


def _judge_kept(
    label: str, baseline_rows: list[CellRow], candidate_rows: list[CellRow], settings: Settings, levels: Levels
) -> Pair:
    """The verdict on the repeats kept: a failure the baseline never had, then the speed evidence
    (pass, regression or inconclusive), with the accuracy test as one more regression."""
    base, cand = side(baseline_rows, settings.metric), side(candidate_rows, settings.metric)
    invalid = _invalid_notes(baseline_rows, candidate_rows, settings.metric)
    new_statuses = sorted(set(cand.statuses) - set(base.statuses) - {CellStatus.OK})
    if new_statuses:
        failed = ", ".join(f"{status} in {cand.statuses[status]} of {cand.total} repeats" for status in new_statuses)
        notes = (f"candidate: {failed}; the baseline never ended so", *invalid)
        return Pair(label, base, cand, Verdict.NEW_FAILURE, notes=notes)
    if base.metric is None:
        why = "no ok baseline repeat: the baseline ran and failed, the candidate"
        if cand.metric:
            return Pair(label, base, cand, Verdict.FIXED, notes=(f"{why} runs", *invalid))
        return Pair(label, base, cand, Verdict.FAILING_IN_BOTH, notes=(f"{why} fails too", *invalid))
    if cand.metric is None:
        return Pair(label, base, cand, Verdict.FAILING_IN_BOTH, notes=("no ok candidate repeat", *invalid))
    accuracy, accuracy_p, accuracy_notes = _accuracy_verdict(base, cand, settings, levels)
    evidence = speed_evidence(baseline_rows, candidate_rows, settings, levels)
    found = Pair(
        label,
        base,
        cand,
        evidence.verdict,
        change=evidence.change,
        p_value=evidence.p_value,
        notes=(*accuracy_notes, *invalid, *evidence.notes),
        shift=evidence.shift,
        rounds=evidence.rounds,
    )
    if evidence.verdict is Verdict.REGRESSION:
        return replace(found, notes=(*invalid, *evidence.notes))
    if accuracy is not None:
        return replace(found, verdict=accuracy, p_value=accuracy_p)
    return found


@dataclass(frozen=True)
class Round:
    """One run holding ok values of both sides of a pair (`regress` makes one per round)."""

    slower: float  # log(candidate time / baseline time): above 0 means the candidate was slower
    candidate_second: bool
    run_id: str


@dataclass(frozen=True)
class Evidence:
    """What a speed verdict rests on: the shift with its bounds, the verdict it gives, and why."""

    verdict: Verdict
    change: Optional[float]  # exp(estimate) - 1: the candidate's slowdown (negative: faster)
    shift: Optional[Shift]
    p_value: Optional[float]
    rounds: str  # what the evidence is made of: "10 rounds (5 pairs)", "5 vs 5 repeats"
    notes: tuple[str, ...] = ()


def rounds(baseline_rows: list[CellRow], candidate_rows: list[CellRow], metric: str) -> list[Round]:
    """The pair's rounds, in run order. Both sides ran in one run on one machine state, so the
    per-round ratio cancels whatever drifts between rounds; a side's several ok repeats in a run
    enter as their mean in log space. Which side ran first comes from the row ids (stored in order)."""
    found = []
    for run_id in dict.fromkeys(row.run_id for row in baseline_rows):
        base = [row for row in baseline_rows if row.run_id == run_id]
        cand = [row for row in candidate_rows if row.run_id == run_id]
        base_logs, cand_logs = slower_logs(base, metric), slower_logs(cand, metric)
        if base_logs and cand_logs:
            ratio = sum(cand_logs) / len(cand_logs) - sum(base_logs) / len(base_logs)
            found.append(Round(ratio, min(row.id for row in cand) > min(row.id for row in base), run_id))
    return found


def slower_logs(rows: list[CellRow], metric: str) -> list[float]:
    """The valid values of `metric` in log space, oriented so that higher is slower (log time, or
    minus log throughput): "slower by tau" is the same shift log(1 + tau) for every metric."""
    sign = -1.0 if higher_is_better(metric) else 1.0
    return [sign * math.log(row.metrics[metric]) for row in rows if _measured(row, metric)]


def _measured(row: CellRow, metric: str) -> bool:
    value = row.metrics.get(metric) if row.status == CellStatus.OK else None
    return value is not None and math.isfinite(value) and value > 0


def _invalid_notes(baseline_rows: list[CellRow], candidate_rows: list[CellRow], metric: str) -> list[str]:
    """Name every ok repeat whose value is no measurement (0, negative, not finite): it is a failure."""
    return [
        f"{name} run {row.run_id} repeat {row.repeat}: {metric} = {row.metrics[metric]} is no measurement"
        for name, rows in (("baseline", baseline_rows), ("candidate", candidate_rows))
        for row in rows
        if row.status == CellStatus.OK and metric in row.metrics and not _measured(row, metric)
    ]


def in_both_orders(paired: list[Round]) -> bool:
    """At least one round of each order side by side, as `regress` runs them (A B, B A, …): the
    means of such pairs cancel an additive order effect exactly."""
    return bool(opposite_order_pairs(paired))


def speed_evidence(
    baseline_rows: list[CellRow], candidate_rows: list[CellRow], settings: Settings, levels: Levels
) -> Evidence:
    """Paired rounds in both orders get the signed-rank test on pair-means; anything else (two
    arbitrary runs, rounds all in one order) the rank-sum test on the pooled repeats."""
    paired = rounds(baseline_rows, candidate_rows, settings.metric)
    if in_both_orders(paired):
        return _paired_evidence(paired, settings, levels)
    return _unpaired_evidence(baseline_rows, candidate_rows, len(paired), settings, levels)


def opposite_order_pairs(paired: list[Round]) -> list[int]:
    """Indices of the rounds laid out so that (0, 1), (2, 3), … each hold one round of each order. A
    round missing from the alternation (a failed or disturbed cell left it out) leaves its neighbour
    unpaired, instead of pairing two rounds of one order, whose mean would keep the order effect."""
    laid: list[int] = []
    index = 0
    while index + 1 < len(paired):
        if paired[index].candidate_second != paired[index + 1].candidate_second:
            laid += [index, index + 1]
            index += 2
        else:
            index += 1
    return laid


def _paired_evidence(paired: list[Round], settings: Settings, levels: Levels) -> Evidence:
    laid = opposite_order_pairs(paired)
    slower = np.array([paired[i].slower for i in laid])
    second = np.array([paired[i].candidate_second for i in laid])
    means, flagged = pair_means(slower, second)
    _, z = round_z(slower, second)
    kept = means[~np.isnan(means)]
    notes = [
        f"round {laid[index] + 1} ({'A B' if second[index] else 'B A'}, run {paired[laid[index]].run_id}) is an "
        f"outlier: the candidate {math.expm1(slower[index]):+.1%} slower there, {z[index]:+.0f} robust SDs from its "
        "order's median (a stall?); left out, the other round of its pair stands in, order-corrected"
        for index in np.flatnonzero(flagged)
    ]
    unpaired = len(paired) - len(laid)
    said = f"{len(paired)} rounds ({_plural(len(kept), 'pair')}" + (f", {unpaired} unpaired)" if unpaired else ")")
    reachable = smallest_signed_rank_p(len(kept))
    least = 2 * (math.ceil(math.log2(1 / levels.regression)) + len(paired) // 2 - len(kept))
    reach = _reach_note(said, reachable, levels, f"at least {least} rounds") if reachable > levels.regression else None
    if not kept.size:
        return Evidence(Verdict.INCONCLUSIVE, None, None, None, said, (*notes, str(reach)))
    shift = paired_shift(list(kept), settings.margin, levels.passing, levels.regression)
    return _decide(shift, said, notes, settings, levels, reach)


def _unpaired_evidence(
    baseline_rows: list[CellRow], candidate_rows: list[CellRow], paired: int, settings: Settings, levels: Levels
) -> Evidence:
    base, cand = slower_logs(baseline_rows, settings.metric), slower_logs(candidate_rows, settings.metric)
    notes = _order_note(baseline_rows, candidate_rows)
    said = f"{len(base)} vs {len(cand)} repeats" + (f" ({_plural(paired, 'round')} in one order)" if paired > 1 else "")
    reachable = smallest_rank_sum_p(len(base), len(cand))
    enough = f"at least {_enough_repeats(levels.regression)} a side"
    reach = _reach_note(said, reachable, levels, enough) if reachable > levels.regression else None
    shift = unpaired_shift(base, cand, settings.margin, levels.passing, levels.regression)
    return _decide(shift, said, notes, settings, levels, reach)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


class Answer(IntEnum):
    PASS = 0
    REGRESSION = 1
    INCONCLUSIVE = 2


def answers(estimate: ArrayLike, p_slower: ArrayLike, p_not_slower: ArrayLike, margin: float, levels: Levels) -> Any:
    """The three-answer rule, elementwise (`bench/detector.py` runs it over many trials at once):
    pass when "slower by the margin or more" is rejected at the pass level (the upper bound is
    below the margin); regression when "not slower" is rejected at the regression level and the
    estimate is at or beyond the margin; else inconclusive."""
    estimate, p_slower, p_not_slower = np.asarray(estimate), np.asarray(p_slower), np.asarray(p_not_slower)
    return np.select(
        [p_not_slower <= levels.passing, (p_slower <= levels.regression) & (estimate >= margin)],
        [Answer.PASS, Answer.REGRESSION],
        Answer.INCONCLUSIVE,
    )


def _reach_note(said: str, reachable: float, levels: Levels, enough: str) -> str:
    """The exact rank tests have a smallest p: below it no answer can be reached, however clear the data."""
    return (
        f"inconclusive: {said} cannot give a p below {reachable:.3g}; a regression needs {levels.regression:.3g}, "
        f"a pass {levels.passing:.3g}: {enough} can reach both"
    )


def _decide(
    shift: Shift, said: str, notes: list[str], settings: Settings, levels: Levels, reach: Optional[str]
) -> Evidence:
    """Pass when the upper bound is below the threshold, regression when the lower bound is above 0
    and the estimate at or beyond the threshold; else inconclusive, with what would settle it
    (`reach`: the test's counts cannot reach a level at all)."""
    change = math.expm1(shift.estimate)
    answer = answers(shift.estimate, shift.p_slower, shift.p_not_slower, settings.margin, levels)
    if answer == Answer.PASS:
        faster = shift.p_faster <= levels.passing
        return Evidence(
            Verdict.IMPROVEMENT if faster else Verdict.NOT_SLOWER, change, shift, shift.p_not_slower, said, tuple(notes)
        )
    if answer == Answer.REGRESSION:
        return Evidence(Verdict.REGRESSION, change, shift, shift.p_slower, said, tuple(notes))
    notes.append(reach or _settle_note(shift, settings, levels))
    return Evidence(Verdict.INCONCLUSIVE, change, shift, min(shift.p_slower, shift.p_not_slower), said, tuple(notes))


def _settle_note(shift: Shift, settings: Settings, levels: Levels) -> str:
    """Why the pair is inconclusive, and how many rounds (repeats) would settle it if the change
    and the noise stayed as measured."""
    if shift.estimate < settings.margin:
        why = f"upper bound {percent(shift.high)}: a slowdown of {settings.threshold:.0%} is not ruled out"
        gap, level = settings.margin - shift.estimate, levels.passing
    else:
        why = f"lower bound {percent(shift.low)}: no slowdown at all is not ruled out"
        gap, level = shift.estimate, levels.regression
    paired = shift.test is Test.SIGNED_RANK
    needed = pairs_needed(shift.spread * (1.0 if paired else math.sqrt(2)), gap, level)
    per, unit = (2, "rounds") if paired else (1, "repeats a side")
    if needed is None:
        return f"inconclusive: {why}; the change sits at the threshold: no practical number of {unit} settles it"
    return f"inconclusive: {why}; ~{per * needed} {unit} would settle it at this noise (alpha {level:.3g})"


def _order_note(baseline_rows: list[CellRow], candidate_rows: list[CellRow]) -> list[str]:
    """Rounds (runs holding both sides) in which the candidate always ran second leave an order
    effect (a warmer machine, a fuller page cache) free to pose as a regression; `regress` alternates."""
    rounds = {row.run_id for row in baseline_rows} & {row.run_id for row in candidate_rows}
    if len(rounds) < 2:
        return []
    first = {run: min(row.id for row in baseline_rows if row.run_id == run) for run in rounds}
    if all(row.id > first[row.run_id] for row in candidate_rows if row.run_id in rounds):
        return [f"the candidate ran second in all {len(rounds)} rounds: an order effect is not ruled out"]
    return []


def _accuracy_verdict(
    base: Side, cand: Side, settings: Settings, levels: Levels
) -> tuple[Optional[Verdict], Optional[float], list[str]]:
    """An accuracy drop beyond the tolerance counts only when the rank test over the repeats'
    accuracies backs it at the regression level (one test of the gate's family); its own p."""
    if base.accuracy is None or cand.accuracy is None:
        return None, None, []
    drop = base.accuracy.median - cand.accuracy.median
    if drop <= settings.accuracy_tolerance:
        return None, None, []
    said = f"median accuracy {drop * 100:.1f} points lower (tolerance {settings.accuracy_tolerance * 100:.1f})"
    reachable = smallest_rank_sum_p(base.accuracy.n, cand.accuracy.n)
    if reachable > levels.regression:
        return (
            Verdict.INCONCLUSIVE,
            None,
            [f"{said}, but {base.accuracy.n} vs {cand.accuracy.n} repeats cannot back it (p >= {reachable:.3f})"],
        )
    p = float(p_rank_sum(np.array(cand.accuracies), np.array(base.accuracies), "less"))
    if p > levels.regression:
        return None, None, [f"{said}, but within the repeats' spread (accuracy p={p:.3f})"]
    return Verdict.ACCURACY_REGRESSION, p, [f"{said}, accuracy p={p:.4f} (level {levels.regression:.3g})"]


def _enough_repeats(alpha: float) -> int:
    """Repeats per side at which a clear separation reaches alpha with the exact rank-sum test."""
    return next(n for n in range(2, 100) if smallest_rank_sum_p(n, n) <= alpha)


def percent(bound: float) -> str:
    """A log-space bound as a slowdown; ±∞ where the test cannot reach its level."""
    return f"{math.expm1(bound):+.1%}" if math.isfinite(bound) else ("+∞" if bound > 0 else "-∞")


def headline(result: Comparison) -> str:
    """The worst outcome first, in the words the exit code stands for."""
    if result.broken:
        return f"{result.outcome.value}: " + "; ".join(str(b) for b in result.broken) + " — nothing was compared"
    counts = Counter(pair.verdict.value for pair in result.pairs)
    found = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) or "no pairs"
    outcome = result.outcome.value
    if result.outcome is Outcome.NO_REGRESSION and result.inconclusive:
        outcome += f" ({len(result.inconclusive)} inconclusive accepted by --allow-inconclusive)"
    return f"{outcome}: {result.candidate} vs {result.baseline} — {len(result.pairs)} pairs: {found}"


def method_note(result: Comparison) -> str:
    """How the verdicts were reached, with the levels this look used."""
    settings, levels = result.settings, result.levels
    direction = METRICS[settings.metric].direction.value
    note = (
        f"metric {settings.metric} ({direction} is better), medians over ok repeats ±CV; slower by: the candidate's "
        f"slowdown (Hodges-Lehmann in log space; pairs of rounds in opposite orders: Wilcoxon signed-rank, else "
        f"Mann-Whitney U) with its one-sided bounds [lower at the regression level, upper at the pass level]; "
        f"not slower: upper bound below +{settings.threshold:.0%}; regression: lower bound above 0 and the estimate "
        f"at +{settings.threshold:.0%} or more; else inconclusive; accuracy: a drop beyond "
        f"{settings.accuracy_tolerance * 100:.1f} points that the rank test backs at the regression level"
    )
    if levels is None:
        return note
    looks = (
        f", looks planned after {', '.join(map(str, settings.looks))} rounds (alpha spent as alpha·(n/N)^3)"
        if settings.looks
        else ""
    )
    return note + (
        f"; alpha {settings.alpha}{looks}: pass level {levels.passing:.3g}, regression level {levels.regression:.3g} "
        "(split over the gate's tests, Bonferroni)"
    )


