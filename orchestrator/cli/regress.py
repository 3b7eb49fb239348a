"""`regress`: build both images, run the same cells in rounds (A B, B A, …), compare, fail on
regression (`analysis.regress`); with `--bisect FW@GOOD FW@BAD`, the first version of a catalog
family that regressed against GOOD (`analysis.bisect`, on `analysis.bisect_bench`)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Optional

from rich.table import Table

from orchestrator.analysis import bisect, compare, regress
from orchestrator.analysis.bisect_bench import RegressBench
from orchestrator.cli.common_args import (
    Subparsers,
    add_data_dir,
    add_repeats,
    add_results_dir,
    add_spec,
    add_store,
    add_system,
)
from orchestrator.cli.compare import OUTCOME_ERRORS, add_compare_options, report_comparison, settings_of
from orchestrator.cli.output import console
from orchestrator.errors import UsageError
from orchestrator.render import bisect as bisect_text
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import spec_hash
from orchestrator.store import queries


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "regress", help="build both images, run the same cells in rounds (A B, B A, …), compare, fail on regression"
    )
    # Required unless --bisect (checked by the handler).
    parser.add_argument("--baseline", metavar="FRAMEWORK@VERSION[-VARIANT]")
    parser.add_argument("--candidate", metavar="FRAMEWORK@VERSION[-VARIANT]")
    add_spec(parser, regress.DEFAULT_SPEC, "workloads")
    add_system(parser, "system of the spec (default %(default)s)", default="cpu")
    add_repeats(parser, "rounds before the first look, order alternating (default %(default)s)", default=14)
    parser.add_argument(
        "--max-repeats",
        type=int,
        metavar="N",
        help=f"while a pair is inconclusive, double the rounds up to N (alpha spent over the looks; default "
        f"{regress.DEFAULT_CAP}, or --repeats when that is more)",
    )
    add_data_dir(parser)
    add_results_dir(parser)
    add_compare_options(parser)
    add_store(parser)
    parser.add_argument(
        "--bisect",
        nargs=2,
        metavar=("FW@GOOD", "FW@BAD"),
        help="find the first version of the catalog family between GOOD and BAD that regressed against GOOD",
    )
    parser.set_defaults(handler=cmd_regress)


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


def cmd_regress(args: argparse.Namespace) -> None:
    if args.bisect:
        cmd_bisect(args)
        return
    if args.baseline is None or args.candidate is None:
        raise UsageError("regress needs --baseline and --candidate, or --bisect FW@GOOD FW@BAD")
    planned = regress.looks(args.repeats, regress.cap(args.repeats, args.max_repeats))
    settings = replace(settings_of(args), looks=planned)
    request = regress_request(args, queries.parse_selection(args.baseline), queries.parse_selection(args.candidate))
    rounds = regress.prepare(request)
    broken = regress.build_images(rounds, console)
    if broken:
        result = compare.Comparison(args.baseline, args.candidate, settings, [], [], [], (broken,))
        report_comparison(result, args, sources=([], []))
    result = regress.gate(rounds, planned, settings, console)
    report_comparison(result, args, sources=(rounds.runs, rounds.runs))


def cmd_bisect(args: argparse.Namespace) -> None:
    if args.baseline or args.candidate:
        raise UsageError("--bisect GOOD BAD names both ends itself: leave out --baseline and --candidate")
    if args.allow_inconclusive:
        raise UsageError(
            "--allow-inconclusive: a search cannot pass a step it could not settle (it would guess a side)"
        )
    if args.junit:
        raise UsageError("--junit: a bisect writes no JUnit file (its steps are not pairs); use --markdown")
    search = bisect.search_range(load_catalog(), *args.bisect)
    planned = regress.looks(args.repeats, regress.cap(args.repeats, args.max_repeats))
    steps = bisect.steps_planned(len(search.versions))
    base = settings_of(args)
    settings = bisect.step_settings(base, len(search.versions), planned)
    good = search.selection(search.versions[0])
    request = regress_request(args, good, search.selection(search.versions[-1]))
    regress.regress_spec(request, args.results_dir / "bisect" / "check")  # bad spec or system: exit 2 before building
    key = bisect.state_key(search, spec=spec_hash(args.spec), system=args.system, settings=settings, store=args.store)
    name = f"bisect-{search.family.framework}-{search.versions[0]}-{search.versions[-1]}-{key[:12]}"
    path = args.results_dir / "bisect" / f"{name.removeprefix('bisect-')}.json"
    state = bisect.SearchState.load(path, key, search.versions)
    method = (
        f"{len(search.versions)} versions ({', '.join(search.versions)}); at most {steps} steps, each GOOD vs one "
        f"version in rounds A B, B A, … with looks after {', '.join(map(str, planned))} rounds; "
        f"alpha {base.alpha} split over {steps} steps: {settings.alpha:.4g} per step, spent over its looks "
        "(each error rate of the search at most alpha)"
    )
    console.print(f"bisect {good.text} … {search.versions[-1]}: {method}", highlight=False)
    if state.steps:
        console.print(f"resuming from {path}: measured so far {', '.join(state.steps)}", highlight=False)
    bench = RegressBench(search, request, settings, name, console)
    conclusion = bisect.search(bench, state, planned, lambda: state.save(path))
    print_evidence(state, conclusion)
    console.print(f"  · {method}", highlight=False)
    console.print(
        f"  · each step's rounds are regress {name}-<version> (`compare` on them gives the step's verdict); "
        f"images built by this call: {', '.join(bench.built) or 'none'}; state: {path}",
        highlight=False,
    )
    _write_markdown(args.markdown, bisect_text.to_markdown(state, conclusion, method))
    if conclusion.outcome in OUTCOME_ERRORS:
        raise OUTCOME_ERRORS[conclusion.outcome](conclusion.text)


def print_evidence(state: bisect.SearchState, conclusion: bisect.Conclusion) -> None:
    rows = bisect_text.evidence_rows(state)
    table = Table(title=f"{conclusion.text}  (GOOD: {state.versions[0]})", title_justify="left")
    for column in rows[0]:
        table.add_column(column, overflow="fold")
    for row in rows:
        style = "red" if row["verdict"] == compare.Outcome.REGRESSION.value else None
        table.add_row(*row.values(), style=style)
    console.print(table)


def _write_markdown(path: Optional[Path], text: str) -> None:
    if path is None:
        return
    try:
        path.write_text(text)
    except OSError as exc:
        raise UsageError(f"--markdown {path}: cannot write there ({exc.strerror})") from exc
