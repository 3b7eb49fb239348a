"""`run-cell JOB_FILE`: run one cell from a Slurm job file (what each job runs on its node)."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.backends.slurm_node import run_cell_file
from orchestrator.cli.common_args import Subparsers
from orchestrator.cli.output import console


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("run-cell", help="run one cell from a Slurm job file (what each job runs)")
    parser.add_argument("job_file", type=Path)
    parser.set_defaults(handler=cmd_run_cell)


def cmd_run_cell(args: argparse.Namespace) -> None:
    run_cell_file(args.job_file, console)
