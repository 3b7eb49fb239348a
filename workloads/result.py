"""The result document (schema ``contract.RESULT_SCHEMA``): written in the cell, read on the host.

One set of dataclasses is the schema both ways, as pyperf's ``Run`` is: the workload builds a
``Result`` (or ``OpsResult``) and ``write_result`` writes its ``to_json``; the orchestrator reads the
file back with ``read_result``, which checks every key against the same fields and names the first
one that does not fit. Adding a field (with a default, so older documents still load) keeps the
schema version; renaming or changing the meaning of one bumps it.

Annotations are written so that ``typing.get_type_hints`` can evaluate them on Python 3.9+ (the
host reads; older images only write).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Optional, TypeVar, Union

from workloads.contract import RESULT_SCHEMA
from workloads.files import write_atomically

T = TypeVar("T")


class ResultError(ValueError):
    """The result file is missing, unreadable, of an unknown schema, or a key does not fit the schema."""


@dataclass(frozen=True)
class Warmup:
    """What was left out of ``train_img_per_s``, in words a report can show."""

    kind: str
    steps: int
    note: str


@dataclass(frozen=True)
class TrainWindow:
    """When the timed epochs ran, in unix seconds (the host's clock too), and the samples they trained:
    the host summarises its GPU monitoring and energy over this window only."""

    start_unix: float
    end_unix: float
    samples: int

    @property
    def seconds(self) -> float:
        return self.end_unix - self.start_unix


@dataclass
class Result:
    """Metrics of one training run; field order is the JSON key order."""

    framework: str
    versions: dict[str, str]
    model: str
    dataset: str
    device: str
    params: int
    batch_size: int
    epochs: int
    samples_per_epoch: int
    max_samples: Optional[int]
    optimizer: str
    lr: float
    options: dict[str, Any]
    warmup: Warmup
    epoch_seconds: list[float]
    train_seconds: float
    train_img_per_s: float
    step_seconds_median: float
    final_loss: float
    final_accuracy: float
    test_accuracy: Optional[float]
    inference_img_per_s: float
    peak_rss_mb: float
    seed: int = 0
    test_samples: int = 0
    notes: list[str] = field(default_factory=list)
    validation_accuracy: Optional[float] = None
    validation_samples: int = 0
    inference_latency_p50_ms: Optional[float] = None
    inference_latency_p99_ms: Optional[float] = None
    inference_batches: int = 0
    peak_device_memory_mb: Optional[float] = None
    epoch_losses: list[float] = field(default_factory=list)
    replicas: int = 1  # data-parallel replicas (GPUs); batch_size is per replica
    global_batch_size: int = 0  # samples per step over all replicas
    warmup_seconds: float = 0.0  # start of training to the first timed step (compilation included)
    timing: dict[str, Any] = field(default_factory=dict)  # windows, self-check figures, suspects
    timing_suspect: bool = False
    train_window: Optional[TrainWindow] = None
    data_provenance: Optional[dict[str, Any]] = None  # workloads.datasets.provenance: official, generated or user

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_json(cls, data: object) -> Result:
        return _from_json(cls, data)


@dataclass(frozen=True)
class Metric:
    """One measured number of a result's ``metrics`` list; the orchestrator stores each as it is."""

    name: str
    value: float
    unit: str


@dataclass
class OpsResult:
    """The low-level operations benchmark: one metric per (operation, size)."""

    framework: str
    versions: dict[str, str]
    model: str
    dataset: str
    device: str
    options: dict[str, Any]
    warmup: Warmup
    sizes: list[int]
    repeats: int
    metrics: list[Metric]
    peak_rss_mb: float
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def data_provenance(self) -> None:
        """Operations run on generated tensors: no dataset, so no provenance."""
        return None

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_json(cls, data: object) -> OpsResult:
        return _from_json(cls, data)


Document = Union[Result, OpsResult]


def write_result(result: Document, path: str | os.PathLike[str]) -> Path:
    """Write the result JSON atomically, so a killed run never leaves half a file."""
    text = json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n"

    def write(file: BinaryIO) -> None:
        file.write(text.encode("utf-8"))

    return write_atomically(Path(path), write)


def read_result(path: Path) -> Document:
    """The document at ``path``: an ``OpsResult`` when it lists its own ``metrics``, else a ``Result``."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ResultError(f"{path}: the workload wrote no result") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: unreadable result ({exc})") from exc
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else data
        raise ResultError(f"{path}: expected schema {RESULT_SCHEMA}, got {found!r}")
    try:
        return OpsResult.from_json(data) if "metrics" in data else Result.from_json(data)
    except ResultError as exc:
        raise ResultError(f"{path}: {exc}") from exc


def _to_json(document: Document) -> dict[str, Any]:
    return {"schema": RESULT_SCHEMA, **_finite(asdict(document))}


def _finite(value: Any) -> Any:
    """Replace NaN and infinities (a diverged loss) with None so the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _from_json(cls: type[T], data: object, where: str = "") -> T:
    """``cls`` from its JSON object: each field checked against its annotation; a missing field
    with a default takes it (an older document), one without is an error; other keys are ignored."""
    if not isinstance(data, dict):
        raise ResultError(f"key '{where}': expected an object, got {data!r}" if where else "expected an object")
    hints = typing.get_type_hints(cls)
    values = {}
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{where}.{spec.name}" if where else spec.name
        if spec.name in data:
            values[spec.name] = _value(hints[spec.name], data[spec.name], key)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ResultError(f"key '{key}' is missing")
    return cls(**values)


def _value(kind: Any, value: object, key: str) -> Any:
    """``value`` as the annotation ``kind`` says, or a ResultError naming ``key`` and what it expected."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Union:  # Optional[X]
        return None if value is None else _value(args[0], value, key)
    if dataclasses.is_dataclass(kind):
        return _from_json(kind, value, key)  # type: ignore[arg-type]
    if origin is list and isinstance(value, list):
        return [_value(args[0], item, f"{key}[{index}]") for index, item in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        return {name: _value(args[1], item, f"{key}.{name}") for name, item in value.items()}
    if kind is Any or (kind in (str, bool) and isinstance(value, kind)):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and value is None:
        return math.nan  # `_finite` wrote a non-finite value (a diverged loss) as null
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    expected = getattr(origin or kind, "__name__", str(kind))
    raise ResultError(f"key '{key}': expected {expected}, got {value!r}")
