"""Upgrade decisions beyond a yes/no, on the command line: `regress --bisect FW@GOOD FW@BAD` (the real
bench behind `bisect.py`'s search: `regress`'s images and rounds), `report --history FW[@LOW..HIGH]`
(`history.py`) and `reproduce CELL` (`reproduce.py`). Parsing and printing only."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from rich.console import Console
from rich.table import Table

from orchestrator.analysis import bisect, compare, regress
from orchestrator.analysis import reproduce as again
from orchestrator.analysis.compare import BrokenSide
from orchestrator.backends.engine import connect
from orchestrator.cli.analysis import OUTCOME_ERRORS, regress_request, settings_of
from orchestrator.errors import CellsFailed, UsageError
from orchestrator.images.build import image_state
from orchestrator.run.runner import run_matrix
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import spec_hash
from orchestrator.status import CellStatus
from orchestrator.store.database import DEFAULT_STORE, Store


def register(commands: argparse._SubParsersAction, console: Console) -> None:
    """Add `--bisect` to `regress` and `--history` to `report` (both registered by `analysis_cli`), and
    the `reproduce` command."""
    report = commands.choices["report"]
    report.add_argument(
        "--history",
        metavar="FW[@LOW..HIGH]",
        help="every stored measurement of a framework across its versions (instead of one run)",
    )
    one_run = report.get_default("handler")
    report.set_defaults(handler=lambda args: cmd_history(args, console) if args.history else one_run(args))

    reproduce_cmd = commands.add_parser(
        "reproduce", help="run one stored cell again, exactly, beside its stored figure"
    )
    reproduce_cmd.add_argument("cell", metavar="CELL", help="cell id (the cell_id column of `results --format csv`)")
    reproduce_cmd.add_argument("--repeats", type=int, default=1, help="times to run it (default %(default)s)")
    reproduce_cmd.add_argument("--data-dir", type=Path, default=Path("data"))
    reproduce_cmd.add_argument("--results-dir", type=Path, default=Path("results"))
    reproduce_cmd.add_argument(
        "--store", default=os.environ.get("BENCHMATRIX_STORE", DEFAULT_STORE), help="path or URL"
    )
    reproduce_cmd.set_defaults(handler=lambda args: cmd_reproduce(args, console))

    parser = commands.choices["regress"]
    parser.add_argument(
        "--bisect",
        nargs=2,
        metavar=("FW@GOOD", "FW@BAD"),
        help="find the first version of the catalog family between GOOD and BAD that regressed against GOOD",
    )
    plain = parser.get_default("handler")
    parser.set_defaults(handler=lambda args: cmd_bisect(args, console) if args.bisect else _plain(args, plain))


def _plain(args: argparse.Namespace, handler: Callable[[argparse.Namespace], None]) -> None:
    if args.baseline is None or args.candidate is None:
        raise UsageError("regress needs --baseline and --candidate, or --bisect FW@GOOD FW@BAD")
    handler(args)


@dataclass
class RegressBench:
    """The search's bench on the real engine: each step is a `regress` of GOOD against one version,
    named `<name>-<version>` (the same when resumed) and stored with the step's design (its looks and
    its share of alpha), so `compare` on a step's runs gives the step's verdict."""

    search: bisect.SearchRange
    request: regress.RegressRequest  # baseline GOOD; the candidate is set per version
    settings: compare.Settings  # a step's: alpha / steps, looks planned
    name: str  # this search's id (from its state key)
    console: Console
    run_one: regress.RunOne = run_matrix  # one round (a fake at its shape in unit tests)
    built: list[str] = field(default_factory=list)  # tags this process built (not found current)
    _rounds: dict[str, regress.Rounds] = field(default_factory=dict)

    def rounds(self, version: str) -> regress.Rounds:
        if version not in self._rounds:
            prepared = regress.prepare(replace(self.request, candidate=self.search.selection(version)))
            self._rounds[version] = replace(prepared, name=f"{self.name}-{version}", alpha=self.settings.alpha)
        return self._rounds[version]

    def build(self, version: str) -> Optional[BrokenSide]:
        catalog = load_catalog()
        client = connect()
        for selection in (self.request.baseline, self.search.selection(version)):
            entry = catalog.find(selection.framework, selection.version, selection.variant)[0]
            if image_state(client, catalog, entry) != "current" and entry.tag not in self.built:
                self.built.append(entry.tag)
        return regress.build_images(self.rounds(version), self.console)

    def add_round(self, version: str, runs: list[str]) -> str:
        rounds = self.rounds(version)
        rounds.runs = list(runs)
        regress.run_rounds(rounds, len(runs) + 1, self.settings.looks, self.console, self.run_one)
        return rounds.runs[-1]

    def judge(self, version: str, runs: list[str]) -> bisect.Judgement:
        rounds = self.rounds(version)
        rounds.runs = list(runs)
        return bisect.verdict(regress.judge_rounds(rounds, self.settings))


def cmd_bisect(args: argparse.Namespace, console: Console) -> None:
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
    print_evidence(state, conclusion, console)
    console.print(f"  · {method}", highlight=False)
    console.print(
        f"  · each step's rounds are regress {name}-<version> (`compare` on them gives the step's verdict); "
        f"images built by this call: {', '.join(bench.built) or 'none'}; state: {path}",
        highlight=False,
    )
    _write_markdown(args.markdown, bisect.to_markdown(state, conclusion, method))
    if conclusion.outcome in OUTCOME_ERRORS:
        raise OUTCOME_ERRORS[conclusion.outcome](conclusion.text)


def print_evidence(state: bisect.SearchState, conclusion: bisect.Conclusion, console: Console) -> None:
    rows = bisect.evidence_rows(state)
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


def cmd_history(args: argparse.Namespace, console: Console) -> None:
    if args.run or args.last:
        raise UsageError("--history reads every run in the store: leave out --run / --last")
    from orchestrator.analysis import history
    from orchestrator.render import report  # matplotlib: loaded only by the commands that draw

    started = time.perf_counter()
    found = history.build(Store(args.store), history.parse_range(args.history))
    table = found.display()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        paths = [args.out / "history.md"]
        paths[0].write_text(f"# history of {found.wanted.text}\n\n{report.markdown_table(table)}\n")
        for figure in found.figures:
            paths.append(args.out / f"{figure.name}.png")
            paths[-1].write_bytes(figure.png)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: cannot write the history there ({exc.strerror})") from exc
    shown = Table(title=f"history of {found.wanted.text}: median training img/s per version", title_justify="left")
    for column in table.columns:
        shown.add_column(column, overflow="fold")
    for record in table.itertuples(index=False):
        shown.add_row(*map(str, record))
    console.print(shown)
    console.print(f"history of {found.wanted.text} in {time.perf_counter() - started:.1f} s:", highlight=False)
    for path in paths:
        console.print(f"  {path}", highlight=False)


def cmd_reproduce(args: argparse.Namespace, console: Console) -> None:
    if not 1 <= args.repeats <= regress.MAX_ROUNDS:
        raise UsageError(f"--repeats {args.repeats}: expected 1 to {regress.MAX_ROUNDS}")
    store = Store(args.store)
    stored = again.load(store, args.cell)
    client = connect()
    image_id = again.check_image(client, stored.row)
    again.check_data(stored, args.data_dir)
    console.print(
        f"reproducing cell {args.cell} ({stored.cell.label} of run {stored.row.run_id}) in image {image_id}",
        highlight=False,
    )
    done = again.run(store, stored, image_id, client, args.data_dir, args.results_dir, args.repeats, console)
    figures = Table(title=f"cell {args.cell}: {done.verdict}", title_justify="left")
    for column in ("", "runs", "median img/s", "lowest–highest", "CV", "ok repeats"):
        figures.add_column(column)
    for name, run_id, summary in (("stored", stored.row.run_id, done.stored), ("now", done.run_id, done.new)):
        figures.add_row(name, run_id, *_summary_cells(summary))
    console.print(figures)
    hosts = Table(title="hosts: stored run vs now", title_justify="left")
    for column in ("field", "stored", "now", ""):
        hosts.add_column(column, overflow="fold")
    for key, before, now, same in done.hosts:
        hosts.add_row(key, before, now, "same" if same else "DIFFERS", style=None if same else "yellow")
    console.print(hosts)
    if set(done.statuses) != {CellStatus.OK}:
        raise CellsFailed(f"reproduce {args.cell}: the new run {done.run_id} ended {', '.join(done.statuses)}")


def _summary_cells(summary: Optional[again.Summary]) -> tuple[str, str, str, str]:
    if summary is None:
        return ("--", "--", "--", "0")
    cv = f"{summary.cv:.1%}" if summary.cv is not None else "--"
    return (f"{summary.median:,.1f}", f"{summary.low:,.1f}–{summary.high:,.1f}", cv, str(summary.n))
