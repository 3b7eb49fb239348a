"""``python -m workloads run|check ...``: the command lines the orchestrator and the tests run in a container.

``run`` trains one model (or, with ``--model ops``, times low-level operations) and writes
a result JSON; ``check`` builds, sizes and briefly trains several models and writes a
check JSON. ``--plugin-dir`` (repeatable) imports model plugins first, so their models are
valid ``--model`` choices.

Exit codes (``contract.WorkloadExit``, apart from the orchestrator's): 0 ok (JSON written), 2 bad
arguments or data, 20 an unexpected failure (its traceback on stderr), 21 a check failed, 22 out of
memory (after a ``BENCHMATRIX_OOM`` line on stdout); a native crash ends it by its signal (128 + N).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from workloads.contract import OOM_MARKER, RunArgs, WorkloadExit, add_arguments, int_at_least
from workloads.errors import RequestError, oom_reason
from workloads.frameworks import FRAMEWORKS, parse_options
from workloads.models import load_plugins
from workloads.ops import DEFAULT_REPEATS, DEFAULT_SIZES, OPS_MODEL
from workloads.pairing import known_datasets, known_models
from workloads.replicas import is_primary, torchrun, under_torchrun
from workloads.result import write_result


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes such as 64,256, got {text!r}") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return sizes


def _known() -> dict[str, object]:
    """What ``run``'s flags choose from, and each framework's options for ``--option``'s help."""
    option_help = "; ".join(
        f"{name}: {', '.join(sorted(spec.options)) or 'none'}" for name, spec in sorted(FRAMEWORKS.items())
    )
    return {
        "frameworks": sorted(FRAMEWORKS),
        "models": known_models(),
        "datasets": known_datasets(),
        "option_help": option_help,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workloads", description="Benchmark workloads run inside framework containers."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="train and evaluate one model, write a result JSON")
    add_arguments(run_parser, _known())
    arg = run_parser.add_argument
    arg("--ops-sizes", type=_sizes, default=DEFAULT_SIZES, help=f"{OPS_MODEL}: matrix sides to sweep")
    arg("--ops-repeats", type=int_at_least(1), default=DEFAULT_REPEATS, help=f"{OPS_MODEL}: timed calls per point")

    check_parser = commands.add_parser("check", help="build, size and briefly train models; write a check JSON")
    add_arguments(check_parser, _known(), shared_only=True)
    arg = check_parser.add_argument
    arg(
        "--case", action="append", required=True, metavar="MODEL=DATASET", help="a model and the dataset to check it on"
    )
    arg("--data-root", type=Path, help="folder holding one folder per dataset")
    arg("--batch-size", type=int_at_least(1), default=4)
    arg("--steps", type=int_at_least(2), default=3, help="training steps on one batch; the loss must fall")
    return parser


def _load_plugins(argv: list[str] | None) -> None:
    """Import plugins before the real parse, so their models are ``--model`` choices."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin-dir", action="append", default=[], type=Path)
    for directory in pre.parse_known_args(argv)[0].plugin_dir:
        load_plugins(directory)


def _writable(out: Path) -> None:
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise RequestError(f"--out {out}: {out.parent} is not a writable folder")


def _run(args: argparse.Namespace) -> int:
    from workloads.pairing import check_pairing

    check_pairing(args.framework, args.model, args.dataset)
    options = parse_options(args.framework, args.options)
    if args.model == OPS_MODEL:
        from workloads.ops import run_ops

        if args.replicas > 1:
            raise RequestError(f"--model {OPS_MODEL} times single operations on one device: --replicas must be 1")
        write_result(run_ops(args.framework, args.ops_sizes, args.ops_repeats, args.seed, options), args.out)
        return 0
    # Imported only now, so that --help and argument errors need no framework.
    from workloads.run import RunConfig, run

    config = RunConfig(RunArgs.from_namespace(args), options)
    result = run(config)
    if is_primary():
        write_result(result, args.out)
    return 0


def _check(args: argparse.Namespace) -> int:
    from workloads.check import check_case, write_check
    from workloads.pairing import check_pairing

    options = parse_options(args.framework, args.options)
    cases = []
    for text in args.case:
        model, sep, dataset = text.partition("=")
        if not sep:
            raise RequestError(f"--case {text}: expected MODEL=DATASET")
        check_pairing(args.framework, model, dataset)
        cases.append((model, dataset))
    results = []
    for model, dataset in cases:
        result = check_case(
            args.framework,
            model,
            dataset,
            args.data_root,
            batch_size=args.batch_size,
            steps=args.steps,
            options=options,
            optimizer=args.optimizer,
            lr=args.lr,
        )
        print(
            f"{'ok ' if result.ok else 'FAIL'} {model} on {dataset}: {result.params} params, "
            f"output {result.output_shape}, losses {[round(v, 4) for v in result.losses]}, {result.seconds:.1f} s"
            + (f" — {result.problem}" if result.problem else ""),
            flush=True,
        )
        results.append(result)
    write_check(args.out, args.framework, results)
    return 0 if all(r.ok for r in results) else WorkloadExit.CHECK_FAILED


def main(argv: list[str] | None = None) -> int:
    try:
        _load_plugins(argv)
        args = build_parser().parse_args(argv)
        _writable(args.out)
        if _needs_torchrun(args):
            return torchrun(sys.argv[1:] if argv is None else argv, args.replicas)
        code = _run(args) if args.command == "run" else _check(args)
    except RequestError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return WorkloadExit.USAGE
    except Exception as exc:
        reason = oom_reason(exc)
        if reason is not None:
            print(f"{OOM_MARKER} {reason}", flush=True)
        traceback.print_exc()
        return WorkloadExit.CRASHED if reason is None else WorkloadExit.OOM
    if is_primary():
        print(f"written to {args.out}", flush=True)
    return code


def _needs_torchrun(args: argparse.Namespace) -> bool:
    """PyTorch replicas are processes: this process becomes their launcher."""
    return (
        args.command == "run"
        and args.framework == "pytorch"
        and args.replicas > 1
        and args.model != OPS_MODEL
        and not under_torchrun()
    )


if __name__ == "__main__":
    sys.exit(main())
