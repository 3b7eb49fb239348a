"""`run`: build what is missing, run every cell (here or as Slurm jobs), store the results."""

from __future__ import annotations

import argparse

from orchestrator.backends import BackendName
from orchestrator.backends.slurm import SlurmOptions
from orchestrator.cli.common_args import (
    Subparsers,
    add_build_options,
    add_data_dir,
    add_matrix_options,
    add_reference,
    add_results_dir,
    add_store,
    build_options,
    filters_of,
)
from orchestrator.cli.output import console
from orchestrator.errors import CellsFailed
from orchestrator.render.views import print_repeat_summary, print_speed_table
from orchestrator.run.runner import RunRequest, run_matrix
from orchestrator.run.scheduler import DEFAULT_CPUS_PER_CELL
from orchestrator.store.database import Store


def register(commands: Subparsers) -> None:
    run = commands.add_parser("run", help="build what is missing, run every cell, store the results")
    add_matrix_options(run)
    add_store(run)
    add_data_dir(run)
    add_results_dir(run)
    add_reference(run, "spec")
    run.add_argument("--resume", metavar="RUN_ID|last", help="append to a run: skip its finished cells, run the rest")
    run.add_argument("--timeout", type=float, metavar="SECONDS", help="per-cell limit (default: the spec's timeout_s)")
    run.add_argument("--pack", action="store_true", help="run cells side by side on disjoint GPUs / cpusets")
    run.add_argument(
        "--cpus-per-cell", type=int, default=DEFAULT_CPUS_PER_CELL, help="CPU cells' cpuset size with --pack"
    )
    run.add_argument("--sample-hz", type=float, default=1.0, help="monitoring samples per second (default 1; 0: none)")
    run.add_argument(
        "--strict-environment",
        action="store_true",
        help="refuse to start (exit 9) when other work busies the host's CPUs or GPUs, instead of warning",
    )
    add_build_options(run)
    add_backend_options(run)
    run.set_defaults(handler=cmd_run)


def backend_name(text: str) -> BackendName:
    """A registered backend's name (orchestrator/backends/registry.py), or argparse's usual refusal."""
    try:
        return BackendName(text)
    except ValueError:
        known = ", ".join(repr(name.value) for name in BackendName)
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {known})") from None


def add_backend_options(run: argparse.ArgumentParser) -> None:
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


def slurm_options(args: argparse.Namespace) -> SlurmOptions:
    """Each job gets a node to itself (`--exclusive`, no CPU count) unless --pack, where CPU cells ask for
    --cpus-per-cell CPUs; a cpuset in the spec asks for its size either way."""
    return SlurmOptions.from_cli(
        args.slurm_partition, args.slurm_account, args.slurm_time_limit, args.cpus_per_cell, pack=args.pack
    )


def cmd_run(args: argparse.Namespace) -> None:
    request = RunRequest(
        spec_path=args.spec,
        filters=filters_of(args),
        repeats=args.repeats,
        store=args.store,
        data_dir=args.data_dir,
        results_dir=args.results_dir,
        build=build_options(args),
        resume=args.resume,
        timeout_s=args.timeout,
        pack=args.pack,
        cpus_per_cell=args.cpus_per_cell,
        sample_hz=args.sample_hz,
        backend=args.backend,
        slurm=slurm_options(args),
        strict_environment=args.strict_environment,
    )
    summary = run_matrix(request, console)
    store = Store(args.store)
    print_speed_table(console, store, summary.run_id, args.reference)
    print_repeat_summary(console, store, summary.run_id)
    if not summary.all_ok:
        raise CellsFailed(f"run {summary.run_id}: " + ", ".join(f"{n} {s}" for s, n in summary.statuses.items()))
