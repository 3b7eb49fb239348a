"""A bisect's evidence as text: one row per version of the range, and the Markdown `regress --bisect` writes."""

from __future__ import annotations

from orchestrator.analysis.bisect import Conclusion, SearchState
from orchestrator.render import markdown


def evidence_rows(state: SearchState) -> list[dict[str, str]]:
    """One row per version of the range, measured or not, oldest first: the evidence table."""
    rows = []
    for version in state.versions[1:]:
        step = state.steps.get(version)
        if step is None:
            rows.append(
                {"version": version, "verdict": "not measured", "rounds": "", "slower than GOOD by": "", "time": ""}
            )
            continue
        changes = ", ".join(f"{change:+.1%}" for change in step.changes.values()) or "--"
        seconds = f"build {step.build_s:.0f} s, rounds {sum(step.rounds_s):.0f} s"
        verdict = step.verdict.value if step.verdict else "in progress"
        rows.append(
            {
                "version": version,
                "verdict": verdict,
                "rounds": str(len(step.runs)),
                "slower than GOOD by": changes,
                "time": seconds,
            }
        )
    return rows


def to_markdown(state: SearchState, conclusion: Conclusion, method: str) -> str:
    """The bisect's conclusion, its method and the evidence table, as `regress --bisect --markdown` writes it."""
    rows = evidence_rows(state)
    heading = f"## bisect {state.versions[0]} … {state.versions[-1]}: {conclusion.text}"
    evidence = markdown.table(list(rows[0]), [list(row.values()) for row in rows])
    return "\n".join([heading, "", method, "", evidence]) + "\n"
