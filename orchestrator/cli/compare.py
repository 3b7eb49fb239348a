"""`compare`: is the candidate slower, less accurate or failing where the baseline was fine? Also the
options and the printing that `regress` and `regress --bisect` share with it; the verdict is
`analysis.compare`'s."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from rich.table import Table

from orchestrator.analysis import compare
from orchestrator.cli.common_args import Subparsers, add_store
from orchestrator.cli.output import console
from orchestrator.errors import BenchmatrixError, BuildFailed, CellsFailed, Inconclusive, RegressionFound, UsageError
from orchestrator.render import compare as compare_text
from orchestrator.store import queries
from orchestrator.store.database import Store


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "compare", help="is the candidate slower, less accurate or failing where the baseline was fine?"
    )
    for side in ("baseline", "candidate"):
        parser.add_argument(
            f"--{side}", required=True, metavar="SEL", help="framework@version[-variant], a run id, or an image id/tag"
        )
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="ID",
        help="take framework/image selections from these runs (repeatable; default: the newest run holding each)",
    )
    add_compare_options(parser)
    add_store(parser)
    parser.set_defaults(handler=cmd_compare)


def add_compare_options(parser: argparse.ArgumentParser) -> None:
    """How a pair is judged and where the verdict is written: `compare` and `regress` alike."""
    defaults = compare.Settings()
    parser.add_argument("--metric", default=defaults.metric, help="metric judged (default %(default)s)")
    parser.add_argument(
        "--threshold", type=float, default=defaults.threshold, help="relative slowdown that matters (default 0.05)"
    )
    parser.add_argument("--alpha", type=float, default=defaults.alpha, help="significance level (default 0.05)")
    parser.add_argument(
        "--accuracy-tolerance",
        type=float,
        default=defaults.accuracy_tolerance,
        help="absolute accuracy drop that matters (default 0.02)",
    )
    parser.add_argument(
        "--allow-inconclusive",
        action="store_true",
        help="pass when pairs are inconclusive but none regressed (default: inconclusive exits 3)",
    )
    parser.add_argument("--junit", type=Path, help="write JUnit XML here (one testcase per cell)")
    parser.add_argument("--markdown", type=Path, help="write a Markdown summary here")
    parser.add_argument("--html", type=Path, help="write the table as an HTML page here")


def settings_of(args: argparse.Namespace) -> compare.Settings:
    return compare.Settings(
        metric=args.metric,
        threshold=args.threshold,
        alpha=args.alpha,
        accuracy_tolerance=args.accuracy_tolerance,
        allow_inconclusive=args.allow_inconclusive,
    )


def cmd_compare(args: argparse.Namespace) -> None:
    settings = settings_of(args)
    baseline, candidate = queries.parse_selection(args.baseline), queries.parse_selection(args.candidate)
    store = Store(args.store)
    for selection in (baseline, candidate):
        if selection.kind == "run":
            queries.require_run(store, selection.text)
    if baseline.kind != candidate.kind:
        raise UsageError(
            f"--baseline {args.baseline} is a {baseline.kind} and --candidate {args.candidate} a {candidate.kind}: "
            "compare like with like"
        )
    if baseline == candidate:
        raise UsageError(f"--baseline and --candidate are the same selection ({args.baseline})")
    if baseline.kind == "run" and args.run:
        raise UsageError("--run narrows framework or image selections; with run ids it has nothing to do")
    base_rows, base_runs = queries.select_cells(store, baseline, args.run)
    cand_rows, cand_runs = queries.select_cells(store, candidate, args.run)
    design = compare.stored_design(store, sorted(set(base_runs) | set(cand_runs)))
    if design:
        settings = design.applied(settings)
    result = compare.compare(base_rows, cand_rows, baseline.kind, settings, args.baseline, args.candidate)
    if design:
        result = replace(result, design=str(design))
    report_comparison(result, args, sources=(base_runs, cand_runs))


# What each outcome but a pass raises, so that `main` exits with its code.
OUTCOME_ERRORS: dict[compare.Outcome, type[BenchmatrixError]] = {
    compare.Outcome.BUILD_FAILED: BuildFailed,
    compare.Outcome.CELLS_FAILED: CellsFailed,
    compare.Outcome.REGRESSION: RegressionFound,
    compare.Outcome.INCONCLUSIVE: Inconclusive,
}


def report_comparison(
    result: compare.Comparison, args: argparse.Namespace, sources: tuple[list[str], list[str]]
) -> None:
    """Print the table, write the requested files, and raise the outcome's error unless it is a pass."""
    if not result.pairs and not result.broken:
        raise UsageError(
            f"no cell of {result.candidate} matches one of {result.baseline} on everything but the selected "
            f"dimension; baseline cells: {', '.join(result.only_baseline[:5]) or 'none'}; "
            f"candidate cells: {', '.join(result.only_candidate[:5]) or 'none'}"
        )
    if result.broken:
        console.print(f"[bold red]{compare.headline(result)}[/]", highlight=False)
    else:
        print_table(result)
    console.print(f"  · {compare.method_note(result)}", highlight=False)
    if result.design:
        console.print(f"  · {result.design}", highlight=False)
    console.print(f"  · baseline from run(s) {', '.join(sources[0])}; candidate from {', '.join(sources[1])}")
    for title, labels in (
        ("only in the baseline", result.only_baseline),
        ("only in the candidate", result.only_candidate),
    ):
        if labels:
            console.print(f"  · unmatched, {title}: {', '.join(labels)}", highlight=False)
    for flag, path, render in (
        ("--junit", args.junit, compare_text.to_junit),
        ("--markdown", args.markdown, compare_text.to_markdown),
        ("--html", args.html, compare_text.to_html),
    ):
        if path is None:
            continue
        try:
            path.write_text(render(result))
        except OSError as exc:
            raise UsageError(f"{flag} {path}: cannot write there ({exc.strerror})") from exc
    if result.outcome in OUTCOME_ERRORS:
        raise OUTCOME_ERRORS[result.outcome](compare.headline(result))


def print_table(result: compare.Comparison) -> None:
    table = Table(title=compare.headline(result), title_justify="left")
    rows = compare_text.rows_for_display(result)
    for column in rows[0]:
        table.add_column(column, overflow="fold")
    for pair, row in zip(result.pairs, rows):
        style = "red" if pair.failing else "green" if pair.verdict is compare.Verdict.IMPROVEMENT else None
        table.add_row(*row.values(), style=style)
    console.print(table)
