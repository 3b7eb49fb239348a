"""`base bootstrap`: offline base images (debootstrap + docker import)."""

from __future__ import annotations

import argparse

from orchestrator.backends.engine import connect
from orchestrator.cli.common_args import Subparsers
from orchestrator.cli.output import console
from orchestrator.images import base
from orchestrator.spec.catalog import SUITES


def register(commands: Subparsers) -> None:
    base_cmd = commands.add_parser("base", help="offline base images (debootstrap + docker import)")
    actions = base_cmd.add_subparsers(dest="base_command", required=True, metavar="ACTION")
    boot = actions.add_parser("bootstrap", help="build benchmatrix/base:<suite> from a Debian mirror")
    boot.add_argument("--suite", choices=SUITES, required=True)
    boot.add_argument("--mirror", default=base.DEFAULT_MIRROR, help="Debian mirror URL (default %(default)s)")
    boot.add_argument("--force", action="store_true", help="rebuild even if the image is present")
    boot.set_defaults(handler=cmd_bootstrap)


def cmd_bootstrap(args: argparse.Namespace) -> None:
    base.bootstrap(connect(), args.suite, mirror=args.mirror, force=args.force, on_line=console.print, console=console)
