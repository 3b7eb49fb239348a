"""The host↔container contract, defined once: the ``run`` command line, exit codes, markers, schema.

The orchestrator builds a cell's command with ``RunArgs.argv`` and the workload CLI parses it with
the arguments ``add_arguments`` declares, both from RunArgs' fields, so a flag cannot be spelt two
ways; a unit test round-trips one through the other. Importing this module imports no framework.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Optional

RESULT_SCHEMA = "benchmatrix.result/1"
OOM_MARKER = "BENCHMATRIX_OOM"  # printed on stdout before exiting WorkloadExit.OOM
# Starts each note that says why a result's own timing checks distrust its img/s; tables read them back.
TIMING_SUSPECT_PREFIX = "timing-suspect: "


class WorkloadExit(IntEnum):
    """How ``python -m workloads`` ends. USAGE is 2 on both sides (argparse's own code, and the
    orchestrator's ``ExitCode.USAGE``); the workload's other outcomes count from 20, so no number
    means one thing in a cell and another from the orchestrator (``orchestrator/errors.py``: 0–10,
    70, 130), and none is a signal's (128 + N)."""

    OK = 0
    USAGE = 2  # bad arguments or data: nothing was measured
    CRASHED = 20  # an unexpected exception; its traceback is on stderr
    CHECK_FAILED = 21  # `check`: some model failed its check
    OOM = 22  # host or device memory ran out (after an OOM_MARKER line)


OPTIMIZERS = ("adam", "sgd", "rmsprop")
DEFAULT_WARMUP_STEPS = 10
DEFAULT_WINDOW_STEPS = 20


def suspect_note(reason: str) -> str:
    """A result note saying why its timing is suspect, as tables find it (``TIMING_SUSPECT_PREFIX``)."""
    return f"{TIMING_SUSPECT_PREFIX}{reason}"


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


@dataclass(frozen=True)
class Flag:
    """A field's command-line flag: how its text parses, its help, the name of its list of choices
    (given when the parser is built), whether ``check`` has it too, its name when it is not the
    field's (``--option`` for ``options``), and whether ``argv`` leaves it out at its default."""

    parse: Optional[Callable[[str], Any]] = None
    help: Optional[str] = None
    choices: Optional[str] = None
    shared: bool = False
    name: Optional[str] = None
    quiet_default: bool = False


def _flag(parse: Optional[Callable[[str], Any]] = None, help: Optional[str] = None, **given: Any) -> dict[str, Flag]:
    """Field metadata holding the field's Flag."""
    return {"flag": Flag(parse, help, **given)}


@dataclass(frozen=True)
class Training:
    """What one run trains, the identity both sides share: a plan's ``Cell`` names these fields
    alike (``Cell.training``), the workload trains by them and its ``Result`` repeats them."""

    framework: str = field(metadata=_flag(choices="frameworks", shared=True))
    model: str = field(metadata=_flag(choices="models"))
    dataset: str = field(metadata=_flag(choices="datasets"))
    batch_size: int = field(default=32, metadata=_flag(int_at_least(1)))
    epochs: int = field(default=1, metadata=_flag(int_at_least(1)))
    optimizer: str = field(default="adam", metadata=_flag(choices="optimizers", shared=True))
    lr: float = field(default=0.001, metadata=_flag(positive_float, shared=True))
    max_samples: Optional[int] = field(
        default=None, metadata=_flag(int_at_least(1), "train on the first N samples after a seeded shuffle")
    )
    generated_samples: Optional[int] = field(
        default=None,
        metadata=_flag(
            int_at_least(1),
            "generated datasets only: how many training samples to generate (default: the dataset's own count)",
        ),
    )
    warmup_steps: int = field(
        default=DEFAULT_WARMUP_STEPS,
        metadata=_flag(
            int_at_least(0), "untimed training steps before the first timed epoch (every batch shape is warmed)"
        ),
    )


@dataclass(frozen=True)
class RunArgs:
    """Everything ``python -m workloads run`` takes, with the CLI's defaults: each field's flag is
    declared here once (its metadata), and ``argv``, ``add_arguments`` and ``from_namespace``
    follow the fields."""

    training: Training
    out: Path = field(metadata=_flag(Path, "JSON file, written atomically", shared=True))
    data_dir: Optional[Path] = field(
        default=None, metadata=_flag(Path, "the dataset's folder (not needed for generated datasets)")
    )
    window_steps: int = field(
        default=DEFAULT_WINDOW_STEPS,
        metadata=_flag(
            int_at_least(1), "steps per timing window: the device is synchronised once per window, never per step"
        ),
    )
    seed: int = field(default=0, metadata=_flag(int))
    replicas: int = field(
        default=1,
        metadata=_flag(
            int_at_least(1),
            "data-parallel replicas, one per GPU (CPU devices where there is none); "
            "--batch-size is per replica, so a step trains replicas × batch-size samples",
            quiet_default=True,
        ),
    )
    options: tuple[tuple[str, str], ...] = field(  # KEY, VALUE as text
        default=(), metadata=_flag(help="framework option: {option_help}", shared=True, name="option")
    )
    plugin_dirs: tuple[Path, ...] = field(
        default=(), metadata=_flag(Path, "folder of model plugin modules", shared=True, name="plugin-dir")
    )

    @property
    def global_batch(self) -> int:
        """Samples per training step over all replicas (``batch_size`` is per replica)."""
        return self.training.batch_size * self.replicas

    def argv(self) -> list[str]:
        """The arguments after ``python -m workloads``: ``run`` and every flag that is set, defaults
        spelt out (but for a single replica, the usual case)."""
        argv = ["run"]
        for spec, value in _flags(self):
            if spec.metadata["flag"].quiet_default and value == spec.default:
                continue
            for item in value if isinstance(value, tuple) else (value,):
                if item is not None:
                    argv += [_flag_name(spec), "=".join(item) if isinstance(item, tuple) else str(item)]
        return argv

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> RunArgs:
        """The parsed ``run`` arguments back as a RunArgs (options split at their first '=')."""
        given = {spec.name: getattr(args, spec.name) for spec, _ in _flags(cls)}
        given["options"] = tuple(tuple(pair.partition("=")[::2]) for pair in given["options"])
        given["plugin_dirs"] = tuple(given["plugin_dirs"])
        training = Training(**{spec.name: given.pop(spec.name) for spec in dataclasses.fields(Training)})
        return cls(training, **given)


def _flags(value: Any) -> Iterator[tuple[dataclasses.Field, Any]]:
    """Each flag field of a RunArgs (instance or class), its Training's included, with its value."""
    for spec in dataclasses.fields(value):
        if spec.name == "training":
            yield from _flags(getattr(value, "training", Training))
        else:
            yield spec, getattr(value, spec.name, None)


def _flag_name(spec: dataclasses.Field) -> str:
    return "--" + (spec.metadata["flag"].name or spec.name.replace("_", "-"))


def add_arguments(parser: argparse.ArgumentParser, known: dict[str, Any], shared_only: bool = False) -> None:
    """Declare ``run``'s flags on ``parser`` from RunArgs' fields (with ``shared_only``, only those
    ``check`` has too). ``known`` holds what the workload CLI knows at run time: the lists the fields
    choose from (frameworks, models, datasets) and ``option_help``, each framework's options."""
    known = {**known, "optimizers": list(OPTIMIZERS)}
    for spec, _ in _flags(RunArgs):
        flag: Flag = spec.metadata["flag"]
        if shared_only and not flag.shared:
            continue
        options: dict[str, Any] = {"dest": spec.name, "help": flag.help and flag.help.format_map(known)}
        if flag.choices:
            options["choices"] = known[flag.choices]
        if isinstance(spec.default, tuple):  # repeatable
            options.update(action="append", default=[], metavar="KEY=VALUE" if flag.name == "option" else None)
        elif spec.default is dataclasses.MISSING:
            options["required"] = True
        else:
            options["default"] = spec.default
        if flag.parse is not None:
            options["type"] = flag.parse
        parser.add_argument(_flag_name(spec), **options)
