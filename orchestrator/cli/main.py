"""Command line: parse, call one function per command, map exceptions to exit codes."""

from __future__ import annotations

import argparse
import io
import json
import os
import select
import sys
import traceback
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.markup import escape

from orchestrator.backends.discovery import ContainerDiscoverer
from orchestrator.backends.engine import connect
from orchestrator.cli import analysis as analysis_cli
from orchestrator.cli import bundle as bundle_cli
from orchestrator.cli import doctor
from orchestrator.cli import slurm as slurm_cli
from orchestrator.cli import upgrade as upgrade_cli
from orchestrator.errors import BenchmatrixError, BuildFailed, CellsFailed, ExitCode, UsageError
from orchestrator.images import base
from orchestrator.images import build as images
from orchestrator.render.views import print_cells, print_plan, print_repeat_summary, print_speed_table, write_cells
from orchestrator.run import data
from orchestrator.run.devices import plan_fields
from orchestrator.run.plan import Filters, parse_framework_filter, plan
from orchestrator.run.runner import RunRequest, run_matrix
from orchestrator.run.scheduler import DEFAULT_CPUS_PER_CELL
from orchestrator.spec.catalog import SUITES, load_catalog
from orchestrator.spec.matrix import DEFAULT_SPEC, load_spec
from orchestrator.store.database import DEFAULT_STORE, Store


class CliConsole(Console):
    """A console whose closed pipe raises BrokenPipeError for `main` to handle (rich's own exits 1, silently)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


# Piped output (CI logs, files) gets wide tables instead of rich's 80-column default.
console = CliConsole(width=None if sys.stdout.isatty() else 250)
errors = CliConsole(stderr=True, width=None if sys.stderr.isatty() else 250)


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (`plan | head`), not some other broken pipe."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return any(event & select.POLLERR for _, event in poller.poll(0))


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is handled below
    except BrokenPipeError:
        if not stdout_reader_gone():
            return _internal_error()
        # The reader took what it wanted: nothing more to say, and nothing left to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except BenchmatrixError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        errors.print("[bold red]interrupted[/]")
        return ExitCode.INTERRUPTED
    except Exception:  # a bug: its own code, so that CI never reads it as a verdict
        return _internal_error()
    return ExitCode.OK


def _internal_error() -> int:
    traceback.print_exc()
    errors.print(f"[bold red]internal error[/] (exit {ExitCode.INTERNAL}): please report the traceback above")
    return ExitCode.INTERNAL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator",
        description="Benchmark deep-learning frameworks across versions and systems, in containers.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    base_cmd = commands.add_parser("base", help="offline base images (debootstrap + docker import)")
    base_sub = base_cmd.add_subparsers(dest="base_command", required=True, metavar="ACTION")
    boot = base_sub.add_parser("bootstrap", help="build benchmatrix/base:<suite> from a Debian mirror")
    boot.add_argument("--suite", choices=SUITES, required=True)
    boot.add_argument("--mirror", default=base.DEFAULT_MIRROR, help="Debian mirror URL (default %(default)s)")
    boot.add_argument("--force", action="store_true", help="rebuild even if the image is present")
    boot.set_defaults(handler=cmd_base_bootstrap)

    images_cmd = commands.add_parser("images", help="render and build framework images from the catalog")
    images_sub = images_cmd.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    render = images_sub.add_parser("render", help="write one Dockerfile per catalog image")
    render.add_argument("--out", type=Path, default=Path("build/images"), help="default %(default)s")
    render.set_defaults(handler=cmd_images_render)
    build = images_sub.add_parser("build", help="build catalog images with the Docker SDK")
    build.add_argument("--framework", action="append", default=[], metavar="NAME[@VERSION]")
    build.add_argument("--variant", help="cpu, gpu, mkl, ... (default: every variant that runs on a CPU)")
    add_build_options(build)
    build.set_defaults(handler=cmd_images_build)
    listing = images_sub.add_parser("list", help="the catalog and the state of each image here")
    listing.set_defaults(handler=cmd_images_list)

    plan_cmd = commands.add_parser("plan", help="expand the matrix and print its cells (nothing runs)")
    add_matrix_options(plan_cmd)
    plan_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    plan_cmd.set_defaults(handler=cmd_plan)

    run = commands.add_parser("run", help="build what is missing, run every cell, store the results")
    add_matrix_options(run)
    run.add_argument("--store", default=os.environ.get("BENCHMATRIX_STORE", DEFAULT_STORE), help="path or URL")
    run.add_argument("--data-dir", type=Path, default=Path("data"), help="datasets, mounted read-only")
    run.add_argument("--results-dir", type=Path, default=Path("results"), help="logs and result files")
    run.add_argument("--reference", help="framework the speed ratios divide by (default: the spec's)")
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
    slurm_cli.add_run_options(run)
    run.set_defaults(handler=cmd_run)

    results = commands.add_parser("results", help="read the results store")
    results.add_argument("--run", help="run id or 'last' (default: last)")
    results.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    results.add_argument("--out", type=Path, help="write csv/json/parquet to this file (default: stdout)")
    results.add_argument("--store", default=os.environ.get("BENCHMATRIX_STORE", DEFAULT_STORE))
    results.add_argument("--reference", help="framework the speed ratios divide by (default: the run's)")
    results.set_defaults(handler=cmd_results)

    data_cmd = commands.add_parser("data", help="datasets on the host")
    data_sub = data_cmd.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    sample = data_sub.add_parser("sample", help="write a small valid dataset in the original format")
    sample.add_argument("name", choices=sorted(data.DATASETS))
    sample.add_argument("--dir", type=Path, required=True)
    sample.add_argument("--n", type=int, default=2000, help="training samples, at least 1 (test: a fifth)")
    sample.add_argument("--force", action="store_true", help="replace the dataset's files already in --dir")
    sample.set_defaults(handler=cmd_data_sample)
    fetch = data_sub.add_parser("fetch", help="download the official files and verify their sha256")
    fetch.add_argument("name", choices=sorted(data.DATASETS))
    fetch.add_argument("--dir", type=Path, required=True)
    fetch.add_argument(
        "--or-sample",
        type=int,
        metavar="N",
        help="offline: write a sample of N training samples instead, and say so",
    )
    fetch.set_defaults(handler=cmd_data_fetch)
    bundle_cli.register(commands, console)
    doctor.register(commands, console)
    slurm_cli.register(commands, console)
    analysis_cli.register(commands, console)
    upgrade_cli.register(commands, console)
    return parser


def add_matrix_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="matrix file (default %(default)s)")
    parser.add_argument("--system", help="one system of the spec (run: default cpu)")
    parser.add_argument("--framework", action="append", default=[], metavar="NAME[@VERSION]")
    parser.add_argument("--workload", action="append", default=[], metavar="NAME")
    parser.add_argument("--repeats", type=int, help="repeats per cell (default: the spec's)")


def add_build_options(parser: argparse.ArgumentParser) -> None:
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


def filters_of(args: argparse.Namespace) -> Filters:
    return Filters(system=args.system, frameworks=tuple(args.framework), workloads=tuple(args.workload))


def cmd_base_bootstrap(args: argparse.Namespace) -> None:
    base.bootstrap(connect(), args.suite, mirror=args.mirror, force=args.force, on_line=console.print)


def cmd_images_render(args: argparse.Namespace) -> None:
    for path in images.render_all(load_catalog(), args.out):
        console.print(str(path))


def cmd_images_build(args: argparse.Namespace) -> None:
    catalog = load_catalog()
    selected = []
    for text in args.framework or list(catalog.frameworks):
        name, version = parse_framework_filter(text)
        selected += catalog.find(name, version, args.variant)
    if not args.variant:
        selected = [entry for entry in selected if entry.device == "cpu"]
    client = connect()
    options = build_options(args)
    failed = []
    for entry in selected:
        if entry.unbuildable and not args.framework:
            console.print(f"[yellow]skip[/] {entry.tag}: {' '.join(entry.unbuildable.split())}")
            continue
        with console.status(f"building {entry.tag}") as status:
            try:
                image_id = images.ensure_image(
                    client,
                    catalog,
                    entry,
                    options,
                    on_line=lambda line, t=entry.tag: status.update(f"{t}: {line[:70]}"),
                )
            except BenchmatrixError as exc:
                errors.print(f"[red]failed[/] {entry.tag}: {escape(str(exc))}", highlight=False, soft_wrap=True)
                failed.append(exc)
                continue
        console.print(f"[green]built[/] {entry.tag} {image_id[:19]}")
    if failed:
        raise failed[0] if len(failed) == 1 else BuildFailed(f"{len(failed)} images failed to build")


def cmd_images_list(args: argparse.Namespace) -> None:
    catalog = load_catalog()
    client = connect()
    for entry in catalog.images:
        state = "not buildable here" if entry.unbuildable else images.image_state(client, catalog, entry)
        limit = f"  ({entry.gpu_support})" if entry.gpu_support else ""
        console.print(f"{entry.tag:45} {entry.device:4} {state}{limit}", highlight=False)


def cmd_plan(args: argparse.Namespace) -> None:
    spec = load_spec(args.spec)
    cells = plan(spec, args.spec, load_catalog(), filters_of(args), args.repeats, ContainerDiscoverer(args.spec))
    if args.json:
        print(json.dumps([{**cell.to_dict(), **plan_fields(cell)} for cell in cells], indent=2))
    else:
        print_plan(console, cells)


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
        slurm=slurm_cli.options_from(args),
        strict_environment=args.strict_environment,
    )
    summary = run_matrix(request, console)
    store = Store(args.store)
    print_speed_table(console, store, summary.run_id, args.reference)
    print_repeat_summary(console, store, summary.run_id)
    if not summary.all_ok:
        raise CellsFailed(f"run {summary.run_id}: " + ", ".join(f"{n} {s}" for s, n in summary.statuses.items()))


def cmd_results(args: argparse.Namespace) -> None:
    store = Store(args.store)
    run_id = store.resolve_run(args.run)
    if args.format == "table":
        print_speed_table(console, store, run_id, args.reference)
        print_cells(console, store, run_id)
        print_repeat_summary(console, store, run_id)
    elif args.out:
        try:
            out = open(args.out, "wb" if args.format == "parquet" else "w")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise UsageError(f"--out {args.out}: cannot write there ({exc.strerror})") from exc
        with out:
            write_cells(out, store, run_id, args.format)
    else:
        write_cells(sys.stdout, store, run_id, args.format)


def cmd_data_sample(args: argparse.Namespace) -> None:
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


def cmd_data_fetch(args: argparse.Namespace) -> None:
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
            "up to ~20 % in some frameworks — see the README's Honest numbers; accuracy means nothing on it)[/]"
        )
    _print_files("ok", placed, args)


if __name__ == "__main__":
    sys.exit(main())
