"""`data sample|fetch`: datasets on the host."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from orchestrator.cli.common_args import Subparsers
from orchestrator.cli.output import console, errors
from orchestrator.errors import BenchmatrixError
from orchestrator.run import data


def register(commands: Subparsers) -> None:
    data_cmd = commands.add_parser("data", help="datasets on the host")
    actions = data_cmd.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    sample = actions.add_parser("sample", help="write a small valid dataset in the original format")
    sample.add_argument("name", choices=sorted(data.DATASETS))
    sample.add_argument("--dir", type=Path, required=True)
    sample.add_argument("--n", type=int, default=2000, help="training samples, at least 1 (test: a fifth)")
    sample.add_argument("--force", action="store_true", help="replace the dataset's files already in --dir")
    sample.set_defaults(handler=cmd_sample)
    fetch = actions.add_parser("fetch", help="download the official files and verify their sha256")
    fetch.add_argument("name", choices=sorted(data.DATASETS))
    fetch.add_argument("--dir", type=Path, required=True)
    fetch.add_argument(
        "--or-sample",
        type=int,
        metavar="N",
        help="offline: write a sample of N training samples instead, and say so",
    )
    fetch.set_defaults(handler=cmd_fetch)


def cmd_sample(args: argparse.Namespace) -> None:
    written = data.sample(args.name, args.dir, n_train=args.n, n_test=max(1, args.n // 5), force=args.force)
    _print_files("wrote", written, args)


def _print_files(verb: str, paths: list[Path], args: argparse.Namespace, shown: int = 8) -> None:
    """A few of the files (an image folder has thousands), or why there are none."""
    if not paths:
        console.print(f"{args.name} is generated inside each cell: no files needed")
    for path in paths[:shown]:
        console.print(f"{verb} {path}")
    if len(paths) > shown:
        console.print(f"{verb} {len(paths) - shown} more files under {args.dir}")


def cmd_fetch(args: argparse.Namespace) -> None:
    """Offline with --or-sample: a generated sample, or the files a sample wrote earlier, kept as they are."""
    try:
        placed = data.fetch(args.name, args.dir, console=errors)
    except BenchmatrixError as exc:
        if args.or_sample is None:
            raise
        console.print(f"[yellow]{escape(str(exc))}[/]", highlight=False)
        if not data.missing_files(args.name, args.dir):
            console.print(
                f"[yellow]offline: kept the {args.name} files already in {args.dir}; they are not the official "
                "ones (their sha256 differs)[/]",
                highlight=False,
            )
            return
        placed = data.sample(args.name, args.dir, n_train=args.or_sample, n_test=max(1, args.or_sample // 6))
        console.print(
            f"[yellow]offline: wrote a generated {args.name} sample in the same format to {args.dir} "
            "(its img/s may differ from real images': on CPU, uniform or zero pixels moved the MLP's img/s by "
            "up to ~20 % in some frameworks — see docs/measurement.md; accuracy means nothing on it)[/]"
        )
    _print_files("ok", placed, args)
