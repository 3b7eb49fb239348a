"""The host↔container contract, defined once: the ``run`` command line, exit codes, markers, schema.

The orchestrator builds a cell's command with ``RunArgs.argv`` and the workload CLI parses it with
the arguments ``add_run_arguments`` declares, so a flag cannot be spelt two ways; a unit test
round-trips one through the other. Importing this module imports no framework.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

RESULT_SCHEMA = "benchmatrix.result/1"
OOM_MARKER = "BENCHMATRIX_OOM"  # printed on stdout before exiting EXIT_OOM
# Starts each note that says why a result's own timing checks distrust its img/s; tables read them back.
TIMING_SUSPECT_PREFIX = "timing-suspect: "

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # `check`: some model failed its check
EXIT_USAGE = 2  # bad arguments or data: nothing was measured
EXIT_OOM = 3  # host or device memory ran out (after an OOM_MARKER line)

OPTIMIZERS = ("adam", "sgd", "rmsprop")
DEFAULT_WARMUP_STEPS = 10
DEFAULT_WINDOW_STEPS = 20


def suspect_note(reason: str) -> str:
    """A result note saying why its timing is suspect, as tables find it (``TIMING_SUSPECT_PREFIX``)."""
    return f"{TIMING_SUSPECT_PREFIX}{reason}"


@dataclass(frozen=True)
class RunArgs:
    """Everything ``python -m workloads run`` takes, with the CLI's defaults."""

    framework: str
    model: str
    dataset: str
    out: Path
    data_dir: Optional[Path] = None
    batch_size: int = 32
    epochs: int = 1
    optimizer: str = "adam"
    lr: float = 0.001
    max_samples: Optional[int] = None
    generated_samples: Optional[int] = None
    warmup_steps: int = DEFAULT_WARMUP_STEPS
    window_steps: int = DEFAULT_WINDOW_STEPS
    seed: int = 0
    replicas: int = 1
    options: tuple[tuple[str, str], ...] = ()  # KEY, VALUE as text
    plugin_dirs: tuple[Path, ...] = ()

    def argv(self) -> list[str]:
        """The arguments after ``python -m workloads``: ``run`` and every flag, defaults spelt out."""
        argv = ["run", "--framework", self.framework, "--model", self.model, "--dataset", self.dataset]
        if self.data_dir is not None:
            argv += ["--data-dir", str(self.data_dir)]
        argv += [
            "--batch-size", str(self.batch_size),
            "--epochs", str(self.epochs),
            "--optimizer", self.optimizer,
            "--lr", repr(self.lr),
            "--warmup-steps", str(self.warmup_steps),
            "--window-steps", str(self.window_steps),
            "--seed", str(self.seed),
            "--out", str(self.out),
        ]  # fmt: skip
        if self.max_samples is not None:
            argv += ["--max-samples", str(self.max_samples)]
        if self.generated_samples is not None:
            argv += ["--generated-samples", str(self.generated_samples)]
        if self.replicas != 1:
            argv += ["--replicas", str(self.replicas)]
        for key, value in self.options:
            argv += ["--option", f"{key}={value}"]
        for directory in self.plugin_dirs:
            argv += ["--plugin-dir", str(directory)]
        return argv

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> RunArgs:
        """The parsed ``run`` arguments back as a RunArgs (options split at their first '=')."""
        return cls(
            framework=args.framework,
            model=args.model,
            dataset=args.dataset,
            out=args.out,
            data_dir=args.data_dir,
            batch_size=args.batch_size,
            epochs=args.epochs,
            optimizer=args.optimizer,
            lr=args.lr,
            max_samples=args.max_samples,
            generated_samples=args.generated_samples,
            warmup_steps=args.warmup_steps,
            window_steps=args.window_steps,
            seed=args.seed,
            replicas=args.replicas,
            options=tuple(tuple(pair.partition("=")[::2]) for pair in args.option),  # type: ignore[misc]
            plugin_dirs=tuple(args.plugin_dir),
        )


def int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_common_arguments(parser: argparse.ArgumentParser, frameworks: list[str], option_help: str) -> None:
    """Flags ``run`` and ``check`` share."""
    arg = parser.add_argument
    arg("--framework", required=True, choices=frameworks)
    arg("--optimizer", choices=OPTIMIZERS, default="adam")
    arg("--lr", type=positive_float, default=0.001)
    arg("--option", action="append", default=[], metavar="KEY=VALUE", help=f"framework option: {option_help}")
    arg("--plugin-dir", action="append", default=[], type=Path, help="folder of model plugin modules")
    arg("--out", required=True, type=Path, help="JSON file, written atomically")


def add_run_arguments(parser: argparse.ArgumentParser, models: list[str], datasets: list[str]) -> None:
    """The flags only ``run`` has (``add_common_arguments`` adds the rest)."""
    arg = parser.add_argument
    arg("--model", required=True, choices=models)
    arg("--dataset", required=True, choices=datasets)
    arg("--data-dir", type=Path, help="the dataset's folder (not needed for generated datasets)")
    arg("--batch-size", type=int_at_least(1), default=32)
    arg("--epochs", type=int_at_least(1), default=1)
    arg("--max-samples", type=int_at_least(1), help="train on the first N samples after a seeded shuffle")
    arg(
        "--generated-samples",
        type=int_at_least(1),
        help="generated datasets only: how many training samples to generate (default: the dataset's own count)",
    )
    arg(
        "--warmup-steps",
        type=int_at_least(0),
        default=DEFAULT_WARMUP_STEPS,
        help="untimed training steps before the first timed epoch (every batch shape is warmed)",
    )
    arg(
        "--window-steps",
        type=int_at_least(1),
        default=DEFAULT_WINDOW_STEPS,
        help="steps per timing window: the device is synchronised once per window, never per step",
    )
    arg("--seed", type=int, default=0)
    arg(
        "--replicas",
        type=int_at_least(1),
        default=1,
        help="data-parallel replicas, one per GPU (CPU devices where there is none); "
        "--batch-size is per replica, so a step trains replicas × batch-size samples",
    )
