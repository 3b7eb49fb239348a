"""`reproduce CELL`: run one stored cell again, exactly, beside its stored figure (`analysis.reproduce`)."""

from __future__ import annotations

import argparse
from typing import Optional

from rich.table import Table

from orchestrator.analysis import regress
from orchestrator.analysis import reproduce as again
from orchestrator.backends.engine import connect
from orchestrator.cli.common_args import Subparsers, add_data_dir, add_repeats, add_results_dir, add_store
from orchestrator.cli.output import console
from orchestrator.errors import CellsFailed, UsageError
from orchestrator.status import CellStatus
from orchestrator.store.database import Store


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("reproduce", help="run one stored cell again, exactly, beside its stored figure")
    parser.add_argument("cell", metavar="CELL", help="cell id (the cell_id column of `results --format csv`)")
    add_repeats(parser, "times to run it (default %(default)s)", default=1)
    add_data_dir(parser)
    add_results_dir(parser)
    add_store(parser)
    parser.set_defaults(handler=cmd_reproduce)


def cmd_reproduce(args: argparse.Namespace) -> None:
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
    hosts = Table(title="hosts: the stored cell's machine vs now", title_justify="left")
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
