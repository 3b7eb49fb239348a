"""`compare`'s outputs: the table of pairs as text, Markdown, JUnit XML and a standalone HTML page.

Pure functions of a `Comparison` (analysis/compare.py), golden-tested; the headline and the method
note come from the verdict itself, so every output states the same outcome in the same words.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from typing import Optional

from orchestrator.analysis.compare import (
    UNJUDGED,
    Comparison,
    Pair,
    Side,
    Verdict,
    headline,
    method_note,
    percent,
)
from orchestrator.analysis.stats import Summary
from orchestrator.metrics import fmt
from orchestrator.render import markdown


def _fmt(summary: Optional[Summary], metric: str) -> str:
    """The median as the registry shows `metric`, its CV and its n."""
    if summary is None:
        return "--"
    cv = f" ±{summary.cv:.1%}" if summary.cv is not None else ""
    return f"{fmt(metric, summary.median)}{cv} (n={summary.n})"


def _statuses(s: Side) -> str:
    return " ".join(f"{status}×{count}" for status, count in sorted(s.statuses.items()))


def _slowdown(pair: Pair) -> str:
    """The change with its confidence interval: "+10.2% [+4.1%, +16.0%]" (positive: slower)."""
    if pair.change is None:
        return "--"
    if pair.shift is None:
        return f"{pair.change:+.1%}"
    return f"{pair.change:+.1%} [{percent(pair.shift.low)}, {percent(pair.shift.high)}]"


def rows_for_display(result: Comparison) -> list[dict[str, str]]:
    """The table every output shares: one row per pair, values as text."""
    return [
        {
            "cell": pair.label,
            "baseline": _fmt(pair.baseline.metric, result.settings.metric),
            "candidate": _fmt(pair.candidate.metric, result.settings.metric),
            "slower by [CI]": _slowdown(pair),
            "rounds": pair.rounds or "--",
            "p": f"{pair.p_value:.4f}" if pair.p_value is not None else "--",
            "verdict": pair.verdict.value,
            "statuses": f"{_statuses(pair.baseline)} → {_statuses(pair.candidate)}",
            "notes": "; ".join(pair.notes),
        }
        for pair in result.pairs
    ]


def to_markdown(result: Comparison) -> str:
    lines = [f"## {headline(result)}", "", method_note(result)]
    lines += ["", result.design] if result.design else []
    if result.broken:
        return "\n".join(lines + [""] + [f"- {b}" for b in result.broken]) + "\n"
    rows = rows_for_display(result)
    columns = list(rows[0]) if rows else []
    lines += ["", markdown.table(columns, ([row[column] for column in columns] for row in rows))]
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
            f"baseline {row['baseline']}, candidate {row['candidate']}, slower by {row['slower by [CI]']}, "
            f"{row['rounds']}, p {row['p']}; {row['statuses']}; {row['notes']}"
        )
        if kind:
            ET.SubElement(case, kind, message=pair.verdict.value).text = text
        else:
            ET.SubElement(case, "system-out").text = f"{pair.verdict.value}: {text}"
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def to_html(result: Comparison) -> str:
    """A standalone HTML page of the same table, headline and method (for CI artefacts)."""
    rows = rows_for_display(result)
    head = "".join(f"<th>{html.escape(column)}</th>" for column in (rows[0] if rows else []))
    body = "".join(
        f'<tr class="{html.escape(pair.verdict.name.lower())}">'
        + "".join(f"<td>{html.escape(value)}</td>" for value in row.values())
        + "</tr>"
        for pair, row in zip(result.pairs, rows)
    )
    broken = "".join(f"<li>{html.escape(str(b))}</li>" for b in result.broken)
    design = f"<p>{html.escape(result.design)}</p>" if result.design else ""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(headline(result))}</title>'
        "<style>td,th{border:1px solid #ccc;padding:2px 6px}table{border-collapse:collapse}"
        ".regression,.new_failure,.accuracy_regression{background:#fdd}.inconclusive{background:#ffd}</style></head>"
        f"<body><h2>{html.escape(headline(result))}</h2><p>{html.escape(method_note(result))}</p>{design}"
        + (f"<ul>{broken}</ul>" if broken else f"<table><tr>{head}</tr>{body}</table>")
        + "</body></html>\n"
    )
