"""`regress --bisect FW@GOOD FW@BAD`: the option on `regress`, the real bench behind the search
(`regress`'s images and rounds), and the evidence table. The search itself is `bisect.py`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from rich.console import Console
from rich.table import Table

from orchestrator import bisect, compare, regress
from orchestrator.analysis_cli import OUTCOME_ERRORS, settings_of
from orchestrator.catalog import load_catalog
from orchestrator.compare import BrokenSide
from orchestrator.engine import connect
from orchestrator.errors import UsageError
from orchestrator.images import image_state
from orchestrator.spec import spec_hash
from orchestrator.store import Store


def register(commands: argparse._SubParsersAction, console: Console) -> None:
    """Add `--bisect` to the `regress` command that `analysis_cli` registered."""
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
    """The search's bench on the real engine: each step is a `regress` of GOOD against one version."""

    search: bisect.SearchRange
    request: regress.RegressRequest  # baseline GOOD; the candidate is set per version
    settings: compare.Settings
    console: Console
    built: list[str] = field(default_factory=list)  # tags this process built (not found current)
    _rounds: dict[str, regress.Rounds] = field(default_factory=dict)

    def rounds(self, version: str) -> regress.Rounds:
        if version not in self._rounds:
            self._rounds[version] = regress.prepare(replace(self.request, candidate=self.search.selection(version)))
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
        regress.run_rounds(rounds, len(runs) + 1, self.console)
        return rounds.runs[-1]

    def judge(self, version: str, runs: list[str]) -> bisect.Judgement:
        return bisect.gate(
            Store(self.request.store), self.request.baseline, self.search.selection(version), runs, self.settings
        )


def cmd_bisect(args: argparse.Namespace, console: Console) -> None:
    if args.baseline or args.candidate:
        raise UsageError("--bisect GOOD BAD names both ends itself: leave out --baseline and --candidate")
    if args.junit:
        raise UsageError("--junit: a bisect writes no JUnit file (its steps are not pairs); use --markdown")
    search = bisect.search_range(load_catalog(), *args.bisect)
    planned = regress.looks(args.repeats, args.max_repeats)
    steps = bisect.steps_planned(len(search.versions))
    base = settings_of(args)
    settings = replace(base, alpha=base.alpha / steps, looks=len(planned))
    good = search.selection(search.versions[0])
    request = regress.RegressRequest(
        baseline=good,
        candidate=search.selection(search.versions[-1]),
        spec_path=args.spec,
        system=args.system,
        repeats=args.repeats,
        store=args.store,
        data_dir=args.data_dir,
        results_dir=args.results_dir,
        max_repeats=args.max_repeats,
    )
    regress.regress_spec(request, args.results_dir / "bisect" / "check")  # bad spec or system: exit 2 before building
    key = bisect.state_key(
        search, spec=spec_hash(args.spec), system=args.system, settings=settings, looks=planned, store=args.store
    )
    path = (
        args.results_dir
        / "bisect"
        / f"{search.family.framework}-{search.versions[0]}-{search.versions[-1]}-{key[:12]}.json"
    )
    state = bisect.SearchState.load(path, key, search.versions)
    method = (
        f"{len(search.versions)} versions ({', '.join(search.versions)}); at most {steps} steps, each GOOD vs one "
        f"version in rounds A B, B A, … with looks after {', '.join(map(str, planned))} rounds; "
        f"alpha {base.alpha} split over {steps} steps × {len(planned)} looks (Bonferroni): "
        f"{settings.test_alpha:.4g} per look"
    )
    console.print(f"bisect {good.text} … {search.versions[-1]}: {method}", highlight=False)
    if state.steps:
        console.print(f"resuming from {path}: measured so far {', '.join(state.steps)}", highlight=False)
    bench = RegressBench(search, request, settings, console)
    conclusion = bisect.search(bench, state, planned, lambda: state.save(path))
    print_evidence(state, conclusion, console)
    console.print(f"  · {method}", highlight=False)
    console.print(f"  · images built by this call: {', '.join(bench.built) or 'none'}; state: {path}", highlight=False)
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
