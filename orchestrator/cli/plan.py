"""`plan`: expand the matrix and print its cells (no cell runs; a spec with plugins may run a discovery container)."""

from __future__ import annotations

import argparse
import json

from orchestrator.backends.discovery import ContainerDiscoverer
from orchestrator.cli.common_args import Subparsers, add_matrix_options, filters_of
from orchestrator.cli.output import console
from orchestrator.render.views import print_plan
from orchestrator.run.devices import plan_fields
from orchestrator.run.plan import plan
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import load_spec


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("plan", help="expand the matrix and print its cells (no cell runs)")
    add_matrix_options(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=cmd_plan)


def cmd_plan(args: argparse.Namespace) -> None:
    spec = load_spec(args.spec)
    cells = plan(spec, args.spec, load_catalog(), filters_of(args), args.repeats, ContainerDiscoverer(args.spec))
    if args.json:
        print(json.dumps([{**cell.to_dict(), **plan_fields(cell)} for cell in cells], indent=2))
    else:
        print_plan(console, cells)
