"""Is the candidate slower, less accurate or failing where the baseline was fine?

Selections (`framework@version[-variant]`, a run id, an image id or tag) pick two sets of stored
cells; cells are paired on everything but the selected dimension. Per pair the verdict comes from
a one-sided test *and* a practical threshold on the change: a regression must be both
statistically credible and large enough to matter. Where the pair ran in at least 3 rounds (runs
holding both sides, as `regress` makes) in both orders, the test is blocked: a least-squares fit
of the per-round log ratios on the order separates an order effect from the change, and a t-test
judges the order-corrected change. Otherwise it is a Mann-Whitney U test over the pooled ok
repeats and the change of medians. Accuracy: a drop beyond the tolerance that the rank test over
the repeats' accuracies backs.
Failed repeats never enter a median; a status the baseline never had is a regression of its own.
A side whose image never built, or whose cells all failed, is broken: nothing is compared.

Everything below `select_cells` is pure (rows in, results and text out) and golden-tested.
"""

from __future__ import annotations

import difflib
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Literal, Optional

from sqlalchemy import select

from orchestrator.errors import UsageError
from orchestrator.interference import DISTURBED
from orchestrator.stats import (
    BlockedFit,
    Summary,
    blocked_fit,
    detectable_change,
    p_lower,
    relative_change,
    repeats_needed,
    smallest_p,
    summarize,
)
from orchestrator.store import Store, cells
from orchestrator.table import SPEED
from orchestrator.validate import NAME, VERSION

ACCURACY = ("test_accuracy", "final_accuracy")
# Metrics a regression is judged on, and whether higher is better.
HIGHER_IS_BETTER = {
    "train_img_per_s": True,
    "inference_img_per_s": True,
    "train_seconds": False,
    "epoch_seconds_median": False,
    "step_seconds_median": False,
}
BUILD_FIELDS = ("framework", "version", "variant", "image")
IDENTITY_FIELDS = ("system", "framework", "workload", "model", "dataset", "batch_size", "epochs", "options")
SHOWN_CHOICES = 8  # what an unknown selection lists of the store's holdings
MIN_ROUNDS = 3  # rounds in both orders the blocked test needs: two coefficients and one degree of freedom


class Verdict(Enum):
    REGRESSION = "regression"
    NEW_FAILURE = "new failure"
    ACCURACY_REGRESSION = "accuracy regression"
    INCONCLUSIVE = "inconclusive"
    IMPROVEMENT = "improvement"
    NO_CHANGE = "no change"
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


@dataclass(frozen=True)
class Selection:
    kind: Literal["build", "run", "image"]
    text: str
    framework: Optional[str] = None
    version: Optional[str] = None
    variant: Optional[str] = None


@dataclass(frozen=True)
class Settings:
    metric: str = SPEED
    threshold: float = 0.05  # relative change of medians that matters
    alpha: float = 0.05  # one-sided false-alarm rate of the whole gate, per pair
    accuracy_tolerance: float = 0.02  # absolute drop of median accuracy that matters
    allow_inconclusive: bool = False  # an inconclusive pair passes only when the user says so
    looks: int = 1  # planned looks of a sequential `regress`: alpha is split over them (Bonferroni)

    def __post_init__(self) -> None:
        if self.metric not in HIGHER_IS_BETTER:
            raise UsageError(f"--metric {self.metric}: expected one of {', '.join(HIGHER_IS_BETTER)}")
        for name, value in (("threshold", self.threshold), ("alpha", self.alpha)):
            if not 0 < value < 1:
                raise UsageError(f"--{name} {value}: expected a number between 0 and 1")
        if not 0 <= self.accuracy_tolerance < 1:
            raise UsageError(f"--accuracy-tolerance {self.accuracy_tolerance}: expected a number in [0, 1)")

    @property
    def test_alpha(self) -> float:
        """The level each look's tests use: over `looks` looks the false alarms add up to at most alpha."""
        return self.alpha / self.looks


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
    change: Optional[float] = None
    p_value: Optional[float] = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    underpowered: bool = False  # "no change", but the repeats could not have seen the threshold

    @property
    def failing(self) -> bool:
        return self.verdict in FAILING

    @property
    def settled(self) -> bool:
        """More repeats would not be expected to change the verdict's footing."""
        return self.verdict is not Verdict.INCONCLUSIVE and not self.underpowered


@dataclass(frozen=True)
class BrokenSide:
    """A side that cannot be compared: its image never built, or none of its cells ran ok."""

    side: Literal["baseline", "candidate"]
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


def parse_selection(text: str) -> Selection:
    """`name@version[-variant]`, an image id (`sha256:...` or 12+ hex digits), an image tag
    (`repo/name:tag`), or else a run id."""
    if "@" in text:
        name, _, rest = text.partition("@")
        version, _, variant = rest.partition("-")
        if (
            not re.fullmatch(NAME, name)
            or not re.fullmatch(VERSION, version)
            or (variant and not re.fullmatch(NAME, variant))
        ):
            raise UsageError(f"selection {text!r}: expected framework@version or framework@version-variant")
        return Selection("build", text, name, version, variant or None)
    if text.startswith("sha256:") or re.fullmatch(r"[0-9a-f]{12,64}", text) or ":" in text:
        return Selection("image", text)
    return Selection("run", text)


def select_cells(store: Store, selection: Selection, runs: list[str]) -> tuple[list[dict], list[str]]:
    """The selection's cells, and the runs they came from (default: the newest run holding it)."""
    if selection.kind == "run":
        require_run(store, selection.text)
        return store.cell_rows(selection.text), [selection.text]
    for run_id in runs:
        require_run(store, run_id)
    chosen = (
        runs or [run_id for run_id in reversed(store.run_ids()) if _matching(store.cell_rows(run_id), selection)][:1]
    )
    rows = [row for run_id in chosen for row in _matching(store.cell_rows(run_id), selection)]
    if not rows:
        where = f"runs {', '.join(runs)}" if runs else "the store"
        held = _builds(store) if selection.kind == "build" else _images(store)
        raise UsageError(
            f"no cells of {selection.text} in {where}; the store holds {selection.kind}s "
            f"{closest_first(selection.text, held)}"
        )
    return rows, chosen


def require_run(store: Store, run_id: str) -> None:
    """Say "no run X" (and which runs there are, closest first) rather than anything about its kind."""
    ids = store.run_ids()
    if run_id not in ids:
        raise UsageError(f"no run {run_id} in the store; it holds runs {closest_first(run_id, ids)}")


def closest_first(text: str, names: list[str]) -> str:
    """Up to `SHOWN_CHOICES` of `names`, the most similar to `text` first (difflib's ratio)."""
    if not names:
        return "(none)"
    ranked = difflib.get_close_matches(text, names, n=SHOWN_CHOICES, cutoff=0.0)
    more = f" and {len(names) - len(ranked)} more" if len(names) > len(ranked) else ""
    return ", ".join(ranked) + more


def _builds(store: Store) -> list[str]:
    query = select(cells.c.framework, cells.c.version, cells.c.variant).distinct()
    with store.engine.connect() as conn:
        return sorted(f"{name}@{version}-{variant}" for name, version, variant in conn.execute(query))


def _images(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(image for (image,) in conn.execute(select(cells.c.image).distinct()))


def _matching(rows: list[dict], selection: Selection) -> list[dict]:
    if selection.kind == "image":
        text = selection.text
        return [
            r
            for r in rows
            if r["image"] == text
            or (r["image_id"] or "").removeprefix("sha256:").startswith(text.removeprefix("sha256:"))
        ]
    return [
        r
        for r in rows
        if r["framework"] == selection.framework
        and r["version"] == selection.version
        and selection.variant in (None, r["variant"])
    ]


def broken_side(rows: list[dict], side_name: Literal["baseline", "candidate"], selection: str) -> Optional[BrokenSide]:
    """A side whose image never built (its cells are stored as errors without an image id), or
    whose cells all failed: its "fixed" pairs would approve a build that never ran."""
    unbuilt = sorted({row["image"] for row in rows if row["status"] == "error" and not row["image_id"]})
    if unbuilt:
        why = next(row["notes"][0] for row in rows if row["image"] == unbuilt[0] and row["notes"])
        return BrokenSide(side_name, selection, Outcome.BUILD_FAILED, f"{', '.join(unbuilt)} never built ({why})")
    if rows and all(row["status"] != "ok" for row in rows):
        statuses = " ".join(f"{status}×{n}" for status, n in sorted(Counter(row["status"] for row in rows).items()))
        return BrokenSide(side_name, selection, Outcome.CELLS_FAILED, f"all {len(rows)} cells failed ({statuses})")
    return None


def compare(
    baseline_rows: list[dict], candidate_rows: list[dict], kind: str, settings: Settings, baseline: str, candidate: str
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
    ignored = {"config_hash", "repeat"}
    if kind != "run":
        ignored |= set(BUILD_FIELDS) - {"framework"}
        if {row["framework"] for row in baseline_rows} != {row["framework"] for row in candidate_rows}:
            ignored |= {"framework", "options"}
    base_groups, cand_groups = _group(baseline_rows, ignored), _group(candidate_rows, ignored)
    matched = [key for key in base_groups if key in cand_groups]
    pairs = sorted(
        (
            judge_undisturbed(
                _pair_label(base_groups[key][0][0], cand_groups[key][0][0]),
                base_groups[key][0],
                cand_groups[key][0],
                settings,
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
    )


def _group(rows: list[dict], ignored: set[str]) -> dict[tuple, tuple[list[dict], str]]:
    groups: dict[tuple, tuple[list[dict], str]] = {}
    for row in rows:
        identity = {name: row[name] for name in (*IDENTITY_FIELDS, *BUILD_FIELDS)} | (row.get("config") or {})
        key = tuple(sorted((k, repr(v)) for k, v in identity.items() if k not in ignored))
        groups.setdefault(key, ([], _label(row)))[0].append(row)
    return groups


def _label(row: dict) -> str:
    options = ",".join(f"{k}={v}" for k, v in sorted((row["options"] or {}).items()))
    return f"{row['system']}/{row['framework']}/{row['workload']}/bs{row['batch_size']}/e{row['epochs']}" + (
        f"/{options}" if options else ""
    )


def _pair_label(base: dict, cand: dict) -> str:
    """The baseline's label; across frameworks both sides' (their options differ, so neither's)."""
    if base["framework"] == cand["framework"]:
        return _label(base)
    return _label({**base, "framework": f"{base['framework']}→{cand['framework']}", "options": None})


def side(rows: list[dict], metric: str) -> Side:
    ok = [row for row in rows if row["status"] == "ok"]
    values = [row["metrics"][metric] for row in ok if metric in row["metrics"]]
    accuracy_name = next((name for name in ACCURACY if any(name in row["metrics"] for row in ok)), None)
    accuracies = [row["metrics"][accuracy_name] for row in ok if accuracy_name in row["metrics"]]
    return Side(
        Counter(row["status"] for row in rows),
        summarize(values),
        summarize(accuracies),
        tuple(values),
        tuple(accuracies),
    )


def judge_undisturbed(label: str, baseline_rows: list[dict], candidate_rows: list[dict], settings: Settings) -> Pair:
    """`judge` without the disturbed repeats (other work on the cell's CPUs or GPUs, issue 17): the
    verdict leaves them out and its notes name them."""
    left_out = {row["id"]: row for row in [*baseline_rows, *candidate_rows] if row["metrics"].get(DISTURBED)}
    pair = judge(
        label,
        [row for row in baseline_rows if row["id"] not in left_out],
        [row for row in candidate_rows if row["id"] not in left_out],
        settings,
    )
    if not left_out:
        return pair
    named = ", ".join(f"{_label(row)} repeat {row['repeat']} of run {row['run_id']}" for row in left_out.values())
    return replace(pair, notes=(f"left out, disturbed: {named}", *pair.notes))


def judge(label: str, baseline_rows: list[dict], candidate_rows: list[dict], settings: Settings) -> Pair:
    base, cand = side(baseline_rows, settings.metric), side(candidate_rows, settings.metric)
    new_statuses = sorted(set(cand.statuses) - set(base.statuses) - {"ok"})
    if new_statuses:
        failed = ", ".join(f"{status} in {cand.statuses[status]} of {cand.total} repeats" for status in new_statuses)
        return Pair(
            label, base, cand, Verdict.NEW_FAILURE, notes=(f"candidate: {failed}; the baseline never ended so",)
        )
    if base.metric is None:
        why = "no ok baseline repeat: the baseline ran and failed, the candidate"
        if cand.metric:
            return Pair(label, base, cand, Verdict.FIXED, notes=(f"{why} runs",))
        return Pair(label, base, cand, Verdict.FAILING_IN_BOTH, notes=(f"{why} fails too",))
    if cand.metric is None:
        return Pair(label, base, cand, Verdict.FAILING_IN_BOTH, notes=("no ok candidate repeat",))
    accuracy, accuracy_notes = _accuracy_verdict(base, cand, settings)
    paired = rounds(baseline_rows, candidate_rows, settings.metric)
    if blocked_applies(paired):
        fit = blocked_fit([r.log_ratio for r in paired], [r.candidate_second for r in paired])
        evidence = _blocked_evidence(fit, settings)
    else:
        evidence = _rank_evidence(base, cand, baseline_rows, candidate_rows, len(paired), settings)
    change, notes = evidence.change, accuracy_notes + list(evidence.notes)
    if evidence.p_worse is None or evidence.p_better is None:
        return Pair(label, base, cand, accuracy or Verdict.INCONCLUSIVE, change, None, tuple(notes))
    worse_change = change if HIGHER_IS_BETTER[settings.metric] else -change
    p_worse, p_better = evidence.p_worse, evidence.p_better
    if p_worse <= settings.test_alpha and worse_change <= -settings.threshold:
        return Pair(label, base, cand, Verdict.REGRESSION, change, p_worse, tuple(notes))
    if accuracy:
        return Pair(label, base, cand, accuracy, change, p_worse, tuple(notes))
    if p_better <= settings.test_alpha and worse_change >= settings.threshold:
        return Pair(label, base, cand, Verdict.IMPROVEMENT, change, p_better, tuple(notes))
    if p_worse <= settings.test_alpha and worse_change < 0:
        notes.append(f"slower by {-worse_change:.1%}: significant, but below the {settings.threshold:.0%} threshold")
    power = list(evidence.power)
    return Pair(label, base, cand, Verdict.NO_CHANGE, change, p_worse, tuple(notes + power), underpowered=bool(power))


@dataclass(frozen=True)
class Round:
    """One run holding ok values of both sides of a pair (`regress` makes one per round)."""

    log_ratio: float  # log(candidate / baseline), oriented: below 0 means the candidate did worse
    candidate_second: bool


@dataclass(frozen=True)
class Evidence:
    """What a speed verdict rests on; p-values None: too few repeats for any test to reach alpha."""

    change: float  # relative change of the metric, candidate vs baseline
    p_worse: Optional[float]
    p_better: Optional[float]
    notes: tuple[str, ...] = ()
    power: tuple[str, ...] = ()  # the underpowered note, for a "no change"


def rounds(baseline_rows: list[dict], candidate_rows: list[dict], metric: str) -> list[Round]:
    """The pair's rounds, in run order. Both sides ran in one run on one machine state, so the
    per-round ratio cancels whatever drifts between rounds; a side's several ok repeats in a run
    enter as their mean in log space. Which side ran first comes from the row ids (stored in order)."""
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    found = []
    for run_id in dict.fromkeys(row["run_id"] for row in baseline_rows):
        base = [row for row in baseline_rows if row["run_id"] == run_id]
        cand = [row for row in candidate_rows if row["run_id"] == run_id]
        base_logs, cand_logs = _log_values(base, metric), _log_values(cand, metric)
        if base_logs and cand_logs:
            ratio = sign * (sum(cand_logs) / len(cand_logs) - sum(base_logs) / len(base_logs))
            found.append(Round(ratio, min(row["id"] for row in cand) > min(row["id"] for row in base)))
    return found


def _log_values(rows: list[dict], metric: str) -> list[float]:
    return [math.log(row["metrics"][metric]) for row in rows if row["status"] == "ok" and metric in row["metrics"]]


def blocked_applies(paired: list[Round]) -> bool:
    """The blocked fit needs both orders (else order and change are confounded) and a degree of freedom."""
    return len(paired) >= MIN_ROUNDS and len({r.candidate_second for r in paired}) == 2


def _blocked_evidence(fit: BlockedFit, settings: Settings) -> Evidence:
    """The order-corrected change exp(delta) - 1 and its one-sided t-tests (df = rounds - 2)."""
    sign = 1.0 if HIGHER_IS_BETTER[settings.metric] else -1.0
    notes = [f"order-corrected change over {fit.n} rounds in both orders (blocked t-test, df={fit.df})"]
    if fit.p_order() <= settings.test_alpha:
        second = math.expm1(2 * fit.omega)
        notes.append(
            f"order effect: the candidate fared {abs(second):.1%} {'worse' if second < 0 else 'better'} running "
            f"second than first (p={fit.p_order():.4f}), taken out of the change"
        )
    return Evidence(
        change=math.expm1(sign * fit.delta),
        p_worse=fit.p_delta_below_zero(),
        p_better=fit.p_delta_above_zero(),
        notes=tuple(notes),
        power=tuple(_blocked_power_note(fit, settings)),
    )


def _rank_evidence(
    base: Side, cand: Side, baseline_rows: list[dict], candidate_rows: list[dict], paired: int, settings: Settings
) -> Evidence:
    """The unpaired rank test on pooled repeats and the change of medians: for sides without rounds
    in both orders (two arbitrary runs, or rounds all in one order, which `_order_note` flags)."""
    change = relative_change(base.metric.median, cand.metric.median)
    notes = _order_note(baseline_rows, candidate_rows)
    reachable = smallest_p(base.metric.n, cand.metric.n)
    if reachable > settings.test_alpha:
        rounds_said = (
            f", {paired} round{'s' if paired != 1 else ''}: a blocked test needs {MIN_ROUNDS} in both orders"
            if paired
            else ""
        )
        notes.append(
            f"too few repeats for a verdict ({base.metric.n} vs {cand.metric.n} ok{rounds_said}): the rank test "
            f"cannot go below p={reachable:.3f} > alpha={settings.test_alpha:.4g}; run at least "
            f"{_enough_repeats(settings.test_alpha)} repeats per side"
        )
        return Evidence(change, None, None, tuple(notes))
    base_values, cand_values = _oriented(base.values, cand.values, settings.metric)
    return Evidence(
        change=change,
        p_worse=p_lower(base_values, cand_values),
        p_better=p_lower(cand_values, base_values),
        notes=tuple(notes),
        power=tuple(_power_note(base.metric, cand.metric, settings)),
    )


def _order_note(baseline_rows: list[dict], candidate_rows: list[dict]) -> list[str]:
    """Rounds (runs holding both sides) in which the candidate always ran second leave an order
    effect (a warmer machine, a fuller page cache) free to pose as a regression; `regress` alternates."""
    rounds = {row["run_id"] for row in baseline_rows} & {row["run_id"] for row in candidate_rows}
    if len(rounds) < 2:
        return []
    first = {run: min(row["id"] for row in baseline_rows if row["run_id"] == run) for run in rounds}
    if all(row["id"] > first[row["run_id"]] for row in candidate_rows if row["run_id"] in rounds):
        return [f"the candidate ran second in all {len(rounds)} rounds: an order effect is not ruled out"]
    return []


def _accuracy_verdict(base: Side, cand: Side, settings: Settings) -> tuple[Optional[Verdict], list[str]]:
    """An accuracy drop beyond the tolerance counts only when the rank test over the repeats'
    accuracies backs it (training noise, not one unlucky pair of runs); else it is inconclusive."""
    if base.accuracy is None or cand.accuracy is None:
        return None, []
    drop = base.accuracy.median - cand.accuracy.median
    if drop <= settings.accuracy_tolerance:
        return None, []
    said = f"median accuracy {drop * 100:.1f} points lower (tolerance {settings.accuracy_tolerance * 100:.1f})"
    reachable = smallest_p(base.accuracy.n, cand.accuracy.n)
    if reachable > settings.test_alpha:
        return Verdict.INCONCLUSIVE, [
            f"{said}, but {base.accuracy.n} vs {cand.accuracy.n} repeats cannot back it (p >= {reachable:.3f})"
        ]
    p = p_lower(list(base.accuracies), list(cand.accuracies))
    if p > settings.test_alpha:
        return None, [f"{said}, but within the repeats' spread (p={p:.3f})"]
    return Verdict.ACCURACY_REGRESSION, [f"{said}, p={p:.4f}"]


def _power_note(base: Summary, cand: Summary, settings: Settings) -> list[str]:
    """Say when the repeats were too noisy for "no change" to mean the threshold was not crossed."""
    if base.cv is None or cand.cv is None:
        return []
    noise = math.sqrt((base.cv**2 + cand.cv**2) / 2)
    reach = detectable_change(noise, base.n, cand.n, settings.test_alpha)
    if reach <= settings.threshold:
        return []
    needed = repeats_needed(noise, settings.threshold, settings.test_alpha)
    return [
        f"underpowered: at CV {noise:.1%} with {base.n} vs {cand.n} repeats only slowdowns beyond ~{reach:.0%} are "
        f"found 95% of the time; ~{needed} repeats per side would find {settings.threshold:.0%}"
    ]


def _blocked_power_note(fit: BlockedFit, settings: Settings) -> list[str]:
    """The blocked test's counterpart of `_power_note`: the slowdown its rounds could find."""
    reach = -math.expm1(-fit.reach(settings.test_alpha))
    if reach <= settings.threshold:
        return []
    needed = math.ceil(fit.n * (fit.reach(settings.test_alpha) / -math.log1p(-settings.threshold)) ** 2)
    return [
        f"underpowered: with {fit.n} rounds (per-round noise {fit.noise:.1%}) only slowdowns "
        f"beyond ~{reach:.0%} are found 95% of the time; ~{needed} rounds would find {settings.threshold:.0%}"
    ]


def _enough_repeats(alpha: float) -> int:
    """Repeats per side at which a clear separation reaches a tenth of alpha, leaving room for overlap."""
    return next(n for n in range(2, 100) if smallest_p(n, n) <= alpha / 10)


def _oriented(baseline: tuple[float, ...], candidate: tuple[float, ...], metric: str) -> tuple[list, list]:
    """Oriented so that 'candidate lower' always means 'candidate worse'."""
    if HIGHER_IS_BETTER[metric]:
        return list(baseline), list(candidate)
    return [-v for v in baseline], [-v for v in candidate]


def _fmt(summary: Optional[Summary]) -> str:
    if summary is None:
        return "--"
    cv = f" ±{summary.cv:.1%}" if summary.cv is not None else ""
    return f"{summary.median:,.1f}{cv} (n={summary.n})"


def _statuses(s: Side) -> str:
    return " ".join(f"{status}×{count}" for status, count in sorted(s.statuses.items()))


def rows_for_display(result: Comparison) -> list[dict[str, str]]:
    """The table every output shares: one row per pair, values as text."""
    return [
        {
            "cell": pair.label,
            "baseline": _fmt(pair.baseline.metric),
            "candidate": _fmt(pair.candidate.metric),
            "change": f"{pair.change:+.1%}" if pair.change is not None else "--",
            "p": f"{pair.p_value:.4f}" if pair.p_value is not None else "--",
            "verdict": pair.verdict.value,
            "statuses": f"{_statuses(pair.baseline)} → {_statuses(pair.candidate)}",
            "notes": "; ".join(pair.notes),
        }
        for pair in result.pairs
    ]


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


def method_note(settings: Settings) -> str:
    direction = "higher" if HIGHER_IS_BETTER[settings.metric] else "lower"
    level = f"alpha={settings.alpha}"
    if settings.looks > 1:
        level += f" split over {settings.looks} looks ({settings.test_alpha:.4g} each, Bonferroni)"
    return (
        f"metric {settings.metric} ({direction} is better), medians over ok repeats ±CV; verdict: one-sided "
        f"Mann-Whitney U (over {MIN_ROUNDS}+ rounds in both orders: a blocked t-test of the per-round log ratios "
        f"with an order term) at {level} and a change beyond {settings.threshold:.0%}; "
        f"accuracy: a drop beyond {settings.accuracy_tolerance * 100:.1f} points that the same test backs"
    )


def to_markdown(result: Comparison) -> str:
    lines = [f"## {headline(result)}", "", method_note(result.settings)]
    lines += ["", result.design] if result.design else []
    if result.broken:
        return "\n".join(lines + [""] + [f"- {b}" for b in result.broken]) + "\n"
    rows = rows_for_display(result)
    columns = ["cell", "baseline", "candidate", "change", "p", "verdict", "statuses", "notes"]
    lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row[c].replace("|", "\\|") for c in columns) + " |" for row in rows]
    for title, labels in (
        ("only in the baseline", result.only_baseline),
        ("only in the candidate", result.only_candidate),
    ):
        if labels:
            lines += ["", f"Unmatched cells, {title}: " + ", ".join(labels)]
    return "\n".join(lines) + "\n"


def junit_kind(result: Comparison, pair: Pair) -> Optional[str]:
    """The JUnit element a pair gets: regressions fail, an inconclusive pair is an error (skipped
    only under --allow-inconclusive), pairs with one side failing throughout are skipped."""
    if pair.failing:
        return "failure"
    if pair.verdict is Verdict.INCONCLUSIVE:
        return "skipped" if result.settings.allow_inconclusive else "error"
    return "skipped" if pair.verdict in UNJUDGED else None


def to_junit(result: Comparison) -> str:
    """JUnit XML: one testcase per pair, or per broken side (an error); it fails when the exit code does."""
    kinds = [junit_kind(result, pair) for pair in result.pairs]
    suite = ET.Element(
        "testsuite",
        name=f"benchmatrix compare {result.candidate} vs {result.baseline}",
        tests=str(len(result.pairs) + len(result.broken)),
        failures=str(kinds.count("failure")),
        errors=str(kinds.count("error") + len(result.broken)),
        skipped=str(kinds.count("skipped")),
    )
    for broken in result.broken:
        case = ET.SubElement(
            suite, "testcase", classname="benchmatrix.compare", name=f"{broken.side} {broken.selection}"
        )
        ET.SubElement(case, "error", message=broken.outcome.value.lower()).text = str(broken)
    for pair, row, kind in zip(result.pairs, rows_for_display(result), kinds):
        case = ET.SubElement(suite, "testcase", classname="benchmatrix.compare", name=pair.label)
        text = (
            f"baseline {row['baseline']}, candidate {row['candidate']}, change {row['change']}, p {row['p']}; "
            f"{row['statuses']}; {row['notes']}"
        )
        if kind:
            ET.SubElement(case, kind, message=pair.verdict.value).text = text
        else:
            ET.SubElement(case, "system-out").text = f"{pair.verdict.value}: {text}"
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
