"""`python -m orchestrator bundle save|verify|load`: the argument parsers and their handlers."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.backends.engine import connect
from orchestrator.bundle.load import load_bundle
from orchestrator.bundle.manifest import verify
from orchestrator.bundle.save import SaveRequest, save_bundle
from orchestrator.cli.common_args import Subparsers, add_data_dir, add_framework, add_variant
from orchestrator.cli.output import console
from orchestrator.spec.catalog import load_catalog

GB = 1e9


def register(commands: Subparsers) -> None:
    bundle = commands.add_parser("bundle", help="air-gapped bundles: images, datasets, wheels + checksummed manifest")
    actions = bundle.add_subparsers(dest="bundle_command", required=True, metavar="ACTION")

    save = actions.add_parser("save", help="docker save images, copy datasets and wheels, write manifest.json")
    save.add_argument("--out", type=Path, required=True, help="new (or empty) bundle directory")
    add_framework(save)
    add_variant(save, "cpu, gpu, mkl, ... (default: every CPU variant)")
    save.add_argument("--image", action="append", default=[], metavar="REF", help="any image on the engine, by tag")
    save.add_argument("--with-datasets", action="append", default=[], metavar="NAMES", help="comma-separated")
    add_data_dir(save, "where the datasets are")
    save.add_argument("--with-wheelhouse", type=Path, metavar="DIR", help="every *.whl of DIR")
    save.add_argument("--with-base", action="store_true", help="also the base images the framework images build on")
    save.set_defaults(handler=cmd_save)

    check = actions.add_parser("verify", help="check the manifest and every checksum; loads nothing")
    check.add_argument("dir", type=Path)
    check.set_defaults(handler=cmd_verify)

    load = actions.add_parser("load", help="verify everything, then docker load images and place datasets")
    load.add_argument("dir", type=Path)
    add_data_dir(load, "where datasets go")
    load.set_defaults(handler=cmd_load)


def cmd_save(args: argparse.Namespace) -> None:
    request = SaveRequest(
        out=args.out,
        frameworks=tuple(args.framework),
        variant=args.variant,
        images=tuple(args.image),
        datasets=tuple(name for text in args.with_datasets for name in text.split(",") if name),
        data_dir=args.data_dir,
        wheelhouse=args.with_wheelhouse,
        with_base=args.with_base,
    )
    manifest = save_bundle(connect(), request, console)
    console.print(
        f"bundle {args.out}: {len(manifest.images)} images, {len(manifest.datasets)} datasets, "
        f"{sum(entry.role == 'wheel' for entry in manifest.files)} wheels, {manifest.total_bytes / GB:.2f} GB"
    )


def cmd_verify(args: argparse.Namespace) -> None:
    manifest = verify(args.dir, console)
    console.print(
        f"bundle {args.dir} ok: {len(manifest.files)} files, {manifest.total_bytes / GB:.2f} GB, "
        f"written {manifest.created_at:%Y-%m-%d %H:%M} UTC by benchmatrix {manifest.tool_version}"
    )
    for image in manifest.images:
        console.print(f"  image {', '.join(image.tags) or '(untagged)'} {image.id[:19]}")
    for dataset in manifest.datasets:
        console.print(f"  dataset {dataset.name} ({len(dataset.files)} files)")
    if manifest.catalog_hash != load_catalog().catalog_hash():
        console.print("  [yellow]note[/]: saved from another catalog than this checkout's images/catalog.yaml")


def cmd_load(args: argparse.Namespace) -> None:
    load_bundle(connect(), args.dir, args.data_dir, console)
