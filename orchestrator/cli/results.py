"""`results`: read the results store (a table, or csv/json/parquet)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.cli.common_args import Subparsers, add_reference, add_store
from orchestrator.cli.output import console
from orchestrator.errors import UsageError
from orchestrator.render.views import print_cells, print_repeat_summary, print_speed_table, write_cells
from orchestrator.store.database import Store


def register(commands: Subparsers) -> None:
    results = commands.add_parser("results", help="read the results store")
    results.add_argument("--run", help="run id or 'last' (default: last)")
    results.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    results.add_argument("--out", type=Path, help="write csv/json/parquet to this file (default: stdout)")
    add_store(results)
    add_reference(results, "run")
    results.set_defaults(handler=cmd_results)


def cmd_results(args: argparse.Namespace) -> None:
    store = Store(args.store)
    run_id = store.resolve_run(args.run)
    if args.format == "table":
        print_speed_table(console, store, run_id, args.reference)
        print_cells(console, store, run_id)
        print_repeat_summary(console, store, run_id)
    elif args.out:
        try:
            out = open(args.out, "w")  # noqa: SIM115 (closed below); parquet goes to its binary buffer
        except OSError as exc:
            raise UsageError(f"--out {args.out}: cannot write there ({exc.strerror})") from exc
        with out:
            write_cells(out, store, run_id, args.format)
    else:
        write_cells(sys.stdout, store, run_id, args.format)
