"""Arguments that several commands take, each declared once (as asv's `common_args.py` does).

A command that means something else by a flag (`bundle load --data-dir`: where datasets go) passes its
own help; the flag, its type and its default stay the ones declared here.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional

from orchestrator.images import build as images
from orchestrator.run.plan import Filters
from orchestrator.spec.matrix import DEFAULT_SPEC
from orchestrator.store.database import DEFAULT_STORE

Parser = argparse.ArgumentParser
# What `add_subparsers` returns; argparse names it privately.
Subparsers = argparse._SubParsersAction


def add_store(parser: Parser) -> None:
    parser.add_argument(
        "--store", default=os.environ.get("BENCHMATRIX_STORE", DEFAULT_STORE), help="path or URL (default %(default)s)"
    )


def add_spec(parser: Parser, default: Path = DEFAULT_SPEC, what: str = "matrix file") -> None:
    parser.add_argument("--spec", type=Path, default=default, help=f"{what} (default %(default)s)")


def add_system(parser: Parser, help: str, default: Optional[str] = None) -> None:
    parser.add_argument("--system", default=default, help=help)


def add_framework(parser: Parser) -> None:
    parser.add_argument("--framework", action="append", default=[], metavar="NAME[@VERSION]")


def add_variant(parser: Parser, help: str) -> None:
    parser.add_argument("--variant", help=help)


def add_repeats(parser: Parser, help: str, default: Optional[int] = None) -> None:
    parser.add_argument("--repeats", type=int, default=default, help=help)


def add_data_dir(parser: Parser, help: str = "datasets, mounted read-only") -> None:
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help=f"{help} (default %(default)s)")


def add_results_dir(parser: Parser) -> None:
    parser.add_argument(
        "--results-dir", type=Path, default=Path("results"), help="logs and result files (default %(default)s)"
    )


def add_reference(parser: Parser, default_from: str) -> None:
    parser.add_argument("--reference", help=f"framework the speed ratios divide by (default: the {default_from}'s)")


def add_matrix_options(parser: Parser) -> None:
    """The cells of a spec: `plan` and `run` select them alike."""
    add_spec(parser)
    add_system(parser, "one system of the spec (run: default cpu)")
    add_framework(parser)
    parser.add_argument("--workload", action="append", default=[], metavar="NAME")
    add_repeats(parser, "repeats per cell (default: the spec's)")


def filters_of(args: argparse.Namespace) -> Filters:
    return Filters(system=args.system, frameworks=tuple(args.framework), workloads=tuple(args.workload))


def add_build_options(parser: Parser) -> None:
    default_ca = images.DEFAULT_CA_BUNDLE if images.DEFAULT_CA_BUNDLE.is_file() else None
    parser.add_argument(
        "--ca-bundle",
        type=Path,
        default=default_ca,
        help="CA bundle pip trusts during builds, for TLS-intercepting proxies (default: the host's, if any)",
    )
    parser.add_argument("--no-ca-bundle", action="store_true", help="give pip no CA bundle")
    parser.add_argument(
        "--wheelhouse",
        type=Path,
        default=_env_path("BENCHMATRIX_WHEELHOUSE"),
        help="directory of local wheels pip may install from (--find-links)",
    )


def _env_path(name: str) -> Optional[Path]:
    value = os.environ.get(name)
    return Path(value) if value else None


def build_options(args: argparse.Namespace) -> images.BuildOptions:
    return images.BuildOptions(ca_bundle=None if args.no_ca_bundle else args.ca_bundle, wheelhouse=args.wheelhouse)
