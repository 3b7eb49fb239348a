"""Is the candidate slower, less accurate or failing where the baseline was fine?

Selections (`framework@version[-variant]`, a run id, an image id or tag) pick two sets of stored
cells; cells are paired on everything but the selected dimension. Per pair the verdict comes from
a one-sided Mann-Whitney U test over the ok repeats *and* a practical threshold on the change of
medians: a regression must be both statistically credible and large enough to matter. Failed
repeats never enter a median; a status the baseline never had is a regression of its own.

Everything below `select_cells` is pure (rows in, results and text out) and golden-tested.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Optional

from orchestrator.errors import UsageError
from orchestrator.stats import (
    Summary,
    detectable_change,
    p_lower,
    relative_change,
    repeats_needed,
    smallest_p,
    summarize,
)
from orchestrator.store import Store
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
FAILING = ("regression", "new failure", "accuracy regression")


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
    alpha: float = 0.05  # one-sided significance level of the rank test
    accuracy_tolerance: float = 0.02  # absolute drop of median accuracy that matters

    def __post_init__(self) -> None:
        if self.metric not in HIGHER_IS_BETTER:
            raise UsageError(f"--metric {self.metric}: expected one of {', '.join(HIGHER_IS_BETTER)}")
        for name, value in (("threshold", self.threshold), ("alpha", self.alpha)):
            if not 0 < value < 1:
                raise UsageError(f"--{name} {value}: expected a number between 0 and 1")
        if not 0 <= self.accuracy_tolerance < 1:
            raise UsageError(f"--accuracy-tolerance {self.accuracy_tolerance}: expected a number in [0, 1)")


@dataclass(frozen=True)
class Side:
    """One side of a pair: every repeat's status, and the summaries of the ok repeats only."""

    statuses: Counter
    metric: Optional[Summary]
    accuracy: Optional[Summary]
    values: tuple[float, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


@dataclass(frozen=True)
class Pair:
    label: str
    baseline: Side
    candidate: Side
    verdict: str
    change: Optional[float] = None
    p_value: Optional[float] = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failing(self) -> bool:
        return self.verdict in FAILING


@dataclass(frozen=True)
class Comparison:
    baseline: str
    candidate: str
    settings: Settings
    pairs: list[Pair]
    only_baseline: list[str]
    only_candidate: list[str]

    @property
    def regressions(self) -> list[Pair]:
        return [pair for pair in self.pairs if pair.failing]


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
        return store.cell_rows(store.resolve_run(selection.text)), [selection.text]
    for run_id in runs:
        store.resolve_run(run_id)
    chosen = (
        runs or [run_id for run_id in reversed(store.run_ids()) if _matching(store.cell_rows(run_id), selection)][:1]
    )
    rows = [row for run_id in chosen for row in _matching(store.cell_rows(run_id), selection)]
    if not rows:
        where = f"runs {', '.join(runs)}" if runs else "the store"
        raise UsageError(f"no cells of {selection.text} in {where}")
    return rows, chosen


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


def compare(
    baseline_rows: list[dict], candidate_rows: list[dict], kind: str, settings: Settings, baseline: str, candidate: str
) -> Comparison:
    """Pair cells on everything but the selected dimension and judge each pair.

    A run selection pairs on the whole cell config; a build or image selection on all but the
    build (version, variant, image) and, when the two sides are different frameworks, also the
    framework and its options ("should we move from X to Y?").
    """
    ignored = {"config_hash", "repeat"}
    if kind != "run":
        ignored |= set(BUILD_FIELDS) - {"framework"}
        if {row["framework"] for row in baseline_rows} != {row["framework"] for row in candidate_rows}:
            ignored |= {"framework", "options"}
    base_groups, cand_groups = _group(baseline_rows, ignored), _group(candidate_rows, ignored)
    pairs = [
        judge(label, base_groups[key][0], cand_groups[key][0], settings)
        for key, label in sorted(((k, v[1]) for k, v in base_groups.items() if k in cand_groups), key=lambda kv: kv[1])
    ]
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


def side(rows: list[dict], metric: str) -> Side:
    ok = [row for row in rows if row["status"] == "ok"]
    values = [row["metrics"][metric] for row in ok if metric in row["metrics"]]
    accuracy_name = next((name for name in ACCURACY if any(name in row["metrics"] for row in ok)), None)
    accuracies = [row["metrics"][accuracy_name] for row in ok if accuracy_name in row["metrics"]]
    return Side(Counter(row["status"] for row in rows), summarize(values), summarize(accuracies), tuple(values))


def judge(label: str, baseline_rows: list[dict], candidate_rows: list[dict], settings: Settings) -> Pair:
    base, cand = side(baseline_rows, settings.metric), side(candidate_rows, settings.metric)
    new_statuses = sorted(set(cand.statuses) - set(base.statuses) - {"ok"})
    notes = []
    if new_statuses:
        failed = ", ".join(f"{status} in {cand.statuses[status]} of {cand.total} repeats" for status in new_statuses)
        return Pair(label, base, cand, "new failure", notes=(f"candidate: {failed}; the baseline never ended so",))
    if base.metric is None:
        why = "no ok baseline repeat: failed cells never enter a baseline"
        return Pair(label, base, cand, "fixed" if cand.metric else "failing in both", notes=(why,))
    if cand.metric is None:
        return Pair(label, base, cand, "failing in both", notes=("no ok candidate repeat",))
    change = relative_change(base.metric.median, cand.metric.median)
    worse_change = change if HIGHER_IS_BETTER[settings.metric] else -change
    accuracy_drop = base.accuracy.median - cand.accuracy.median if base.accuracy and cand.accuracy else None
    if accuracy_drop is not None and accuracy_drop > settings.accuracy_tolerance:
        notes.append(
            f"median accuracy {accuracy_drop * 100:.1f} points lower "
            f"(tolerance {settings.accuracy_tolerance * 100:.1f})"
        )
    reachable = smallest_p(base.metric.n, cand.metric.n)
    if reachable > settings.alpha:
        notes.append(
            f"too few repeats for a verdict ({base.metric.n} vs {cand.metric.n} ok): the rank test cannot go "
            f"below p={reachable:.3f} > alpha={settings.alpha}; run at least {_enough_repeats(settings.alpha)} "
            "repeats per side"
        )
        verdict = (
            "accuracy regression" if accuracy_drop and accuracy_drop > settings.accuracy_tolerance else "inconclusive"
        )
        return Pair(label, base, cand, verdict, change, None, tuple(notes))
    base_values, cand_values = _oriented(base.values, cand.values, settings.metric)
    p_worse, p_better = p_lower(base_values, cand_values), p_lower(cand_values, base_values)
    if p_worse <= settings.alpha and worse_change <= -settings.threshold:
        verdict, p = "regression", p_worse
    elif accuracy_drop is not None and accuracy_drop > settings.accuracy_tolerance:
        verdict, p = "accuracy regression", p_worse
    elif p_better <= settings.alpha and worse_change >= settings.threshold:
        verdict, p = "improvement", p_better
    else:
        verdict, p = "no change", p_worse
        if p_worse <= settings.alpha and worse_change < 0:
            notes.append(
                f"slower by {-worse_change:.1%}: significant, but below the {settings.threshold:.0%} threshold"
            )
        notes += _power_note(base.metric, cand.metric, settings)
    return Pair(label, base, cand, verdict, change, p, tuple(notes))


def _power_note(base: Summary, cand: Summary, settings: Settings) -> list[str]:
    """Say when the repeats were too noisy for "no change" to mean the threshold was not crossed."""
    if base.cv is None or cand.cv is None:
        return []
    noise = math.sqrt((base.cv**2 + cand.cv**2) / 2)
    reach = detectable_change(noise, base.n, cand.n, settings.alpha)
    if reach <= settings.threshold:
        return []
    needed = repeats_needed(noise, settings.threshold, settings.alpha)
    return [
        f"underpowered: at CV {noise:.1%} with {base.n} vs {cand.n} repeats only slowdowns beyond ~{reach:.0%} are "
        f"found 95% of the time; ~{needed} repeats per side would find {settings.threshold:.0%}"
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
            "verdict": pair.verdict,
            "statuses": f"{_statuses(pair.baseline)} → {_statuses(pair.candidate)}",
            "notes": "; ".join(pair.notes),
        }
        for pair in result.pairs
    ]


def headline(result: Comparison) -> str:
    counts = Counter(pair.verdict for pair in result.pairs)
    found = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) or "no pairs"
    outcome = "REGRESSION" if result.regressions else "no regression"
    return f"{outcome}: {result.candidate} vs {result.baseline} — {len(result.pairs)} pairs: {found}"


def method_note(settings: Settings) -> str:
    direction = "higher" if HIGHER_IS_BETTER[settings.metric] else "lower"
    return (
        f"metric {settings.metric} ({direction} is better), medians over ok repeats ±CV; verdict: one-sided "
        f"Mann-Whitney U at alpha={settings.alpha} and a median change beyond {settings.threshold:.0%}; "
        f"accuracy tolerance {settings.accuracy_tolerance * 100:.1f} points"
    )


def to_markdown(result: Comparison) -> str:
    rows = rows_for_display(result)
    columns = ["cell", "baseline", "candidate", "change", "p", "verdict", "statuses", "notes"]
    lines = [
        f"## {headline(result)}",
        "",
        method_note(result.settings),
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(row[c].replace("|", "\\|") for c in columns) + " |" for row in rows]
    for title, labels in (
        ("only in the baseline", result.only_baseline),
        ("only in the candidate", result.only_candidate),
    ):
        if labels:
            lines += ["", f"Unmatched cells, {title}: " + ", ".join(labels)]
    return "\n".join(lines) + "\n"


def to_junit(result: Comparison) -> str:
    """JUnit XML: one testcase per pair; regressions fail, pairs without a verdict are skipped."""
    suite = ET.Element(
        "testsuite",
        name=f"benchmatrix compare {result.candidate} vs {result.baseline}",
        tests=str(len(result.pairs)),
        failures=str(len(result.regressions)),
        skipped=str(sum(1 for p in result.pairs if p.verdict in ("inconclusive", "failing in both", "fixed"))),
    )
    for pair, row in zip(result.pairs, rows_for_display(result)):
        case = ET.SubElement(suite, "testcase", classname="benchmatrix.compare", name=pair.label)
        text = (
            f"baseline {row['baseline']}, candidate {row['candidate']}, change {row['change']}, p {row['p']}; "
            f"{row['statuses']}; {row['notes']}"
        )
        if pair.failing:
            ET.SubElement(case, "failure", message=pair.verdict).text = text
        elif pair.verdict in ("inconclusive", "failing in both", "fixed"):
            ET.SubElement(case, "skipped", message=pair.verdict).text = text
        else:
            ET.SubElement(case, "system-out").text = f"{pair.verdict}: {text}"
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
