"""`doctor`: is this host ready to run a matrix; the checks are `backends.doctor`'s, this prints them."""

from __future__ import annotations

import argparse

from rich.markup import escape

from orchestrator.backends.doctor import run_checks
from orchestrator.cli.common_args import Subparsers, add_results_dir, add_spec, add_store, add_system
from orchestrator.cli.output import console
from orchestrator.errors import DoctorFailed
from orchestrator.spec.matrix import load_spec, require_system


def register(commands: Subparsers) -> None:
    parser = commands.add_parser("doctor", help="check the engine, GPU runtime, disk, images and store")
    add_spec(parser)
    add_system(parser, "the system you mean to run (default: cpu)")
    add_store(parser)
    add_results_dir(parser)
    parser.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> None:
    kind = require_system(load_spec(args.spec), args.spec, args.system).kind if args.system else "cpu"
    checks = run_checks(kind, args.store, args.results_dir)
    for check in checks:
        mark = "[green]ok[/]  " if check.ok else ("[red]FAIL[/]" if check.blocking else "[yellow]warn[/]")
        console.print(f"{mark} {check.name:16} {escape(check.detail)}", highlight=False, soft_wrap=True)
        if not check.ok and check.fix:
            console.print(f"     {'':16} fix: {escape(check.fix)}", highlight=False, soft_wrap=True)
    blocking = [check.name for check in checks if not check.ok and check.blocking]
    if blocking:
        raise DoctorFailed(f"{len(blocking)} problem(s) block a {kind} run: {', '.join(blocking)}")
    console.print(f"ready for {kind} runs", highlight=False)
