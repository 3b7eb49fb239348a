"""``python -m workloads run ...``: the command line the orchestrator runs in a container.

Exit codes: 0 ok (result JSON written), 2 bad arguments or data, 3 out of memory (after
a ``BENCHMATRIX_OOM`` line on stdout), anything else an unexpected failure with its
traceback on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from workloads.datasets import DATASETS
from workloads.errors import EXIT_OOM, EXIT_USAGE, OOM_MARKER, UsageError, oom_reason
from workloads.frameworks import FRAMEWORKS, MODELS, parse_options
from workloads.result import write_result


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workloads", description="Benchmark workloads run inside framework containers."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="train and evaluate one model, write a result JSON")
    arg = run_parser.add_argument
    arg("--framework", required=True, choices=sorted(FRAMEWORKS))
    arg("--model", required=True, choices=MODELS)
    arg("--dataset", required=True, choices=DATASETS)
    arg("--data-dir", required=True, type=Path, help="folder with the four IDX .gz files")
    arg("--batch-size", type=_int_at_least(1), default=32)
    arg("--epochs", type=_int_at_least(1), default=1)
    arg("--optimizer", choices=["adam"], default="adam")
    arg("--lr", type=_positive_float, default=0.001)
    arg("--max-samples", type=_int_at_least(1), help="train on the first N samples after a seeded shuffle")
    arg("--warmup-steps", type=_int_at_least(0), default=10, help="steps of epoch 1 left out of img/s")
    arg(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="framework option: "
        + "; ".join(f"{name}: {', '.join(spec.options) or 'none'}" for name, spec in sorted(FRAMEWORKS.items())),
    )
    arg("--seed", type=int, default=0)
    arg("--out", required=True, type=Path, help="result JSON file, written atomically")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = parse_options(args.framework, args.option)
        out_dir = args.out.parent
        if not out_dir.is_dir() or not os.access(out_dir, os.W_OK):
            raise UsageError(f"--out {args.out}: {out_dir} is not a writable folder")
        # Imported only now, so that --help and argument errors need no NumPy.
        from workloads.run import RunConfig, run

        config = RunConfig(
            framework=args.framework,
            model=args.model,
            dataset=args.dataset,
            data_dir=args.data_dir,
            batch_size=args.batch_size,
            epochs=args.epochs,
            optimizer=args.optimizer,
            lr=args.lr,
            max_samples=args.max_samples,
            warmup_steps=args.warmup_steps,
            options=options,
            seed=args.seed,
        )
        write_result(run(config), args.out)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except Exception as exc:
        reason = oom_reason(exc)
        if reason is None:
            raise
        print(f"{OOM_MARKER} {reason}", flush=True)
        traceback.print_exc()
        return EXIT_OOM
    print(f"result written to {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
