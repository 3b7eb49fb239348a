"""The result JSON a workload writes (schema ``contract.RESULT_SCHEMA``).

The orchestrator reads the JSON written here. Adding a field keeps the schema version;
renaming or changing the meaning of one bumps it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workloads.contract import RESULT_SCHEMA
from workloads.files import write_atomically


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
    max_samples: int | None
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
    test_accuracy: float | None
    inference_img_per_s: float
    peak_rss_mb: float
    seed: int = 0
    test_samples: int = 0
    notes: list[str] = field(default_factory=list)
    validation_accuracy: float | None = None
    validation_samples: int = 0
    inference_latency_p50_ms: float | None = None
    inference_latency_p99_ms: float | None = None
    inference_batches: int = 0
    peak_device_memory_mb: float | None = None
    epoch_losses: list[float] = field(default_factory=list)
    replicas: int = 1  # data-parallel replicas (GPUs); batch_size is per replica
    global_batch_size: int = 0  # samples per step over all replicas
    warmup_seconds: float = 0.0  # start of training to the first timed step (compilation included)
    timing: dict[str, Any] = field(default_factory=dict)  # windows, self-check figures, suspects
    timing_suspect: bool = False
    train_window: TrainWindow | None = None
    data_provenance: dict[str, Any] | None = None  # workloads.datasets.provenance: official, generated or user

    def to_dict(self) -> dict[str, Any]:
        return {"schema": RESULT_SCHEMA, **_finite(asdict(self))}


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

    def to_dict(self) -> dict[str, Any]:
        return {"schema": RESULT_SCHEMA, **_finite(asdict(self))}


def _finite(value: Any) -> Any:
    """Replace NaN and infinities (a diverged loss) with None so the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_result(result: Result | OpsResult, path: str | os.PathLike[str]) -> Path:
    """Write the result JSON atomically, so a killed run never leaves half a file."""
    text = json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"
    return write_atomically(Path(path), lambda f: f.write(text.encode("utf-8")))
