"""`images render|build|list`: framework images from the catalog."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape
from rich.status import Status

from orchestrator.backends.engine import connect
from orchestrator.cli.common_args import Subparsers, add_build_options, add_framework, add_variant, build_options
from orchestrator.cli.output import console, errors
from orchestrator.errors import BenchmatrixError, BuildFailed
from orchestrator.images import build as images
from orchestrator.run.plan import parse_framework_filter
from orchestrator.spec.catalog import load_catalog


def register(commands: Subparsers) -> None:
    images_cmd = commands.add_parser("images", help="render and build framework images from the catalog")
    actions = images_cmd.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    render = actions.add_parser("render", help="write one Dockerfile per catalog image")
    render.add_argument("--out", type=Path, default=Path("build/images"), help="default %(default)s")
    render.set_defaults(handler=cmd_render)
    build = actions.add_parser("build", help="build catalog images with the Docker SDK")
    add_framework(build)
    add_variant(build, "cpu, gpu, mkl, ... (default: every variant that runs on a CPU)")
    add_build_options(build)
    build.set_defaults(handler=cmd_build)
    listing = actions.add_parser("list", help="the catalog and the state of each image here")
    listing.set_defaults(handler=cmd_list)


def cmd_render(args: argparse.Namespace) -> None:
    for path in images.render_all(load_catalog(), args.out):
        console.print(str(path))


def cmd_build(args: argparse.Namespace) -> None:
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
                    on_line=_show_on(status, entry.tag),
                    console=console,
                )
            except BenchmatrixError as exc:
                errors.print(f"[red]failed[/] {entry.tag}: {escape(str(exc))}", highlight=False, soft_wrap=True)
                failed.append(exc)
                continue
        console.print(f"[green]built[/] {entry.tag} {image_id[:19]}")
    if failed:
        raise failed[0] if len(failed) == 1 else BuildFailed(f"{len(failed)} images failed to build")


def _show_on(status: Status, tag: str) -> Callable[[str], None]:
    """A build's output lines, one at a time, in the spinner's text."""
    return lambda line: status.update(f"{tag}: {line[:70]}")


def cmd_list(args: argparse.Namespace) -> None:
    catalog = load_catalog()
    client = connect()
    for entry in catalog.images:
        state = "not buildable here" if entry.unbuildable else images.image_state(client, catalog, entry)
        limit = f"  ({entry.gpu_support})" if entry.gpu_support else ""
        console.print(f"{entry.tag:45} {entry.device:4} {state}{limit}", highlight=False)
