"""`report`: HTML page, PNG plots and summary.md for one run, or with `--history` every stored
measurement of a framework across its versions (`analysis.history`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.table import Table

from orchestrator.cli.common_args import Subparsers, add_reference, add_store
from orchestrator.cli.output import console
from orchestrator.errors import UsageError
from orchestrator.store.database import Store


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("report", help="HTML page, PNG plots and summary.md for one run")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run", help="run id (default: the newest run)")
    which.add_argument("--last", action="store_true", help="the newest run (the default)")
    parser.add_argument("--out", type=Path, required=True, help="directory for index.html, *.png, summary.md")
    add_reference(parser, "run")
    add_store(parser)
    parser.add_argument(
        "--history",
        metavar="FW[@LOW..HIGH]",
        help="every stored measurement of a framework across its versions (instead of one run)",
    )
    parser.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> None:
    if args.history:
        cmd_history(args)
        return
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


def cmd_history(args: argparse.Namespace) -> None:
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
