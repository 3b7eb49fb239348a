"""Command-line parts of the Slurm backend: `run --backend slurm` options and `run-cell`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from orchestrator.backends import BackendName
from orchestrator.backends.slurm import SlurmOptions
from orchestrator.backends.slurm_node import run_cell_file


def backend_name(text: str) -> BackendName:
    """A registered backend's name (orchestrator/backends/registry.py), or argparse's usual refusal."""
    try:
        return BackendName(text)
    except ValueError:
        known = ", ".join(repr(name.value) for name in BackendName)
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {known})") from None


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--backend",
        type=backend_name,
        choices=list(BackendName),
        default=BackendName.LOCAL,
        help="local: this host's Docker engine; slurm: one sbatch job per cell (default %(default)s)",
    )
    run.add_argument("--slurm-partition", help="sbatch --partition (default: the system's slurm.partition)")
    run.add_argument("--slurm-account", help="sbatch --account (default: the system's slurm.account)")
    run.add_argument(
        "--slurm-time-limit",
        type=int,
        metavar="MINUTES",
        help="job time limit (default: the system's slurm.time_limit_min, else the cell timeout + 5 min)",
    )


def options_from(args: argparse.Namespace) -> SlurmOptions:
    """Each job gets a node to itself (`--exclusive`, no CPU count) unless --pack, where CPU cells ask for
    --cpus-per-cell CPUs; a cpuset in the spec asks for its size either way."""
    return SlurmOptions.from_cli(
        args.slurm_partition, args.slurm_account, args.slurm_time_limit, args.cpus_per_cell, pack=args.pack
    )


def register(commands: argparse._SubParsersAction, console: Console) -> None:
    parser = commands.add_parser("run-cell", help="run one cell from a Slurm job file (what each job runs)")
    parser.add_argument("job_file", type=Path)
    parser.set_defaults(handler=lambda args: run_cell_file(args.job_file, console))
