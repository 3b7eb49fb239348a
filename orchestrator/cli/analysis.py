"""The `report`, `compare` and `regress` commands: argument parsing and printing only; the work is
in `report.py`, `compare.py` and `regress.py`."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from orchestrator.analysis import compare, regress
from orchestrator.errors import BenchmatrixError, BuildFailed, CellsFailed, Inconclusive, RegressionFound, UsageError
from orchestrator.render import compare as compare_text
from orchestrator.store import queries
from orchestrator.store.database import DEFAULT_STORE, Store


def register(commands: argparse._SubParsersAction, console: Console) -> None:
    report_cmd = commands.add_parser("report", help="HTML page, PNG plots and summary.md for one run")
    which = report_cmd.add_mutually_exclusive_group()
    which.add_argument("--run", help="run id (default: the newest run)")
    which.add_argument("--last", action="store_true", help="the newest run (the default)")
    report_cmd.add_argument("--out", type=Path, required=True, help="directory for index.html, *.png, summary.md")
    report_cmd.add_argument("--reference", help="framework the speed ratios divide by (default: the run's)")
    _store_option(report_cmd)
    report_cmd.set_defaults(handler=lambda args: cmd_report(args, console))

    compare_cmd = commands.add_parser(
        "compare", help="is the candidate slower, less accurate or failing where the baseline was fine?"
    )
    for side in ("baseline", "candidate"):
        compare_cmd.add_argument(
            f"--{side}", required=True, metavar="SEL", help="framework@version[-variant], a run id, or an image id/tag"
        )
    compare_cmd.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="ID",
        help="take framework/image selections from these runs (repeatable; default: the newest run holding each)",
    )
    _compare_options(compare_cmd)
    _store_option(compare_cmd)
    compare_cmd.set_defaults(handler=lambda args: cmd_compare(args, console))

    regress_cmd = commands.add_parser(
        "regress", help="build both images, run the same cells in rounds (A B, B A, …), compare, fail on regression"
    )
    # Required unless --bisect (upgrade_cli.register adds it and checks).
    regress_cmd.add_argument("--baseline", metavar="FRAMEWORK@VERSION[-VARIANT]")
    regress_cmd.add_argument("--candidate", metavar="FRAMEWORK@VERSION[-VARIANT]")
    regress_cmd.add_argument("--spec", type=Path, default=regress.DEFAULT_SPEC, help="workloads (default %(default)s)")
    regress_cmd.add_argument("--system", default="cpu")
    regress_cmd.add_argument(
        "--repeats", type=int, default=14, help="rounds before the first look, order alternating (default %(default)s)"
    )
    regress_cmd.add_argument(
        "--max-repeats",
        type=int,
        metavar="N",
        help=f"while a pair is inconclusive, double the rounds up to N (alpha spent over the looks; default "
        f"{regress.DEFAULT_CAP}, or --repeats when that is more)",
    )
    regress_cmd.add_argument("--data-dir", type=Path, default=Path("data"))
    regress_cmd.add_argument("--results-dir", type=Path, default=Path("results"))
    _compare_options(regress_cmd)
    _store_option(regress_cmd)
    regress_cmd.set_defaults(handler=lambda args: cmd_regress(args, console))


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", default=os.environ.get("BENCHMATRIX_STORE", DEFAULT_STORE), help="path or URL (default %(default)s)"
    )


def _compare_options(parser: argparse.ArgumentParser) -> None:
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


def cmd_report(args: argparse.Namespace, console: Console) -> None:
    store = Store(args.store)
    run_id = store.resolve_run(args.run)
    started = time.perf_counter()
    from orchestrator.render import report  # matplotlib: loaded only by the command that draws

    built = report.build(store, run_id, args.reference)
    try:
        paths = report.write(built, args.out)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot write the report there ({exc.strerror})") from exc
    console.print(f"report of run {run_id} in {time.perf_counter() - started:.1f} s:", highlight=False)
    for path in paths:
        console.print(f"  {path}", highlight=False)


def settings_of(args: argparse.Namespace) -> compare.Settings:
    return compare.Settings(
        metric=args.metric,
        threshold=args.threshold,
        alpha=args.alpha,
        accuracy_tolerance=args.accuracy_tolerance,
        allow_inconclusive=args.allow_inconclusive,
    )


def cmd_compare(args: argparse.Namespace, console: Console) -> None:
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
    report_comparison(result, args, console, sources=(base_runs, cand_runs))


# What each outcome but a pass raises, so that `__main__` exits with its code.
OUTCOME_ERRORS: dict[compare.Outcome, type[BenchmatrixError]] = {
    compare.Outcome.BUILD_FAILED: BuildFailed,
    compare.Outcome.CELLS_FAILED: CellsFailed,
    compare.Outcome.REGRESSION: RegressionFound,
    compare.Outcome.INCONCLUSIVE: Inconclusive,
}


def report_comparison(
    result: compare.Comparison, args: argparse.Namespace, console: Console, sources: tuple[list[str], list[str]]
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
        print_table(result, console)
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


def print_table(result: compare.Comparison, console: Console) -> None:
    table = Table(title=compare.headline(result), title_justify="left")
    rows = compare_text.rows_for_display(result)
    for column in rows[0]:
        table.add_column(column, overflow="fold")
    for pair, row in zip(result.pairs, rows):
        style = "red" if pair.failing else "green" if pair.verdict is compare.Verdict.IMPROVEMENT else None
        table.add_row(*row.values(), style=style)
    console.print(table)


def regress_request(
    args: argparse.Namespace, baseline: queries.Selection, candidate: queries.Selection
) -> regress.RegressRequest:
    """The regress of `baseline` against `candidate` that `regress`'s options describe (also each bisect step's)."""
    return regress.RegressRequest(
        baseline=baseline,
        candidate=candidate,
        spec_path=args.spec,
        system=args.system,
        repeats=args.repeats,
        store=args.store,
        data_dir=args.data_dir,
        results_dir=args.results_dir,
        max_repeats=regress.cap(args.repeats, args.max_repeats),
    )


def cmd_regress(args: argparse.Namespace, console: Console) -> None:
    planned = regress.looks(args.repeats, regress.cap(args.repeats, args.max_repeats))
    settings = replace(settings_of(args), looks=planned)
    request = regress_request(args, queries.parse_selection(args.baseline), queries.parse_selection(args.candidate))
    rounds = regress.prepare(request)
    broken = regress.build_images(rounds, console)
    if broken:
        result = compare.Comparison(args.baseline, args.candidate, settings, [], [], [], (broken,))
        report_comparison(result, args, console, sources=([], []))
    result = regress.gate(rounds, planned, settings, console)
    report_comparison(result, args, console, sources=(rounds.runs, rounds.runs))
