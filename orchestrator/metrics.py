"""The metric registry: every metric the tool stores, with its unit, which way is better, its label
and how its value is shown — in one place, as pyperf's `_metadata.py` keeps its metadata.

A result, the monitor and the interference checks make `Metric`s through `measured`, so a stored
unit is the registry's; the regression gate reads `direction` to orient "slower", the tables and
reports read `label` and `format`. A metric a workload names itself (the `ops` benchmark's per-operation
timings) carries its own unit and is not registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from workloads.result import Metric


class Direction(Enum):
    """Which way a metric is better; NEITHER for what describes a cell rather than grades it."""

    HIGHER = "higher"
    LOWER = "lower"
    NEITHER = "neither"


def one_decimal(value: float) -> str:
    """The tables' default: thousands separated, one decimal ("1,234.5")."""
    return f"{value:,.1f}"


@dataclass(frozen=True)
class MetricInfo:
    """What the registry knows of a metric name."""

    name: str
    unit: str
    direction: Direction
    label: str
    format: Callable[[float], str] = one_decimal
    speed: bool = False  # a time or throughput the regression gate can judge ("slower by tau")
    result_key: str = ""  # the key of the workload's result document that carries it, if any


SPEED = "train_img_per_s"
WARMUP = "warmup_seconds"
EPOCH_TIME = "epoch_seconds_median"
ACCURACY = ("test_accuracy", "final_accuracy")  # the accuracy a cell is judged on, first found first
TIMING_SUSPECT = "timing_suspect"  # 1 when the result's own checks distrust its img/s (its notes say why)
DISTURBED = "disturbed"  # 1 when other work or a throttled GPU disturbed the cell (its notes say how)
ENERGY = "energy_j"
IMG_PER_JOULE = "train_img_per_joule"

# What the monitor samples, per source: field → (unit, label); each becomes `<source>_<field>_{mean,p95,max}`.
SAMPLED: dict[str, dict[str, tuple[str, str]]] = {
    "gpu": {
        "util_pct": ("%", "GPU utilisation %"),
        "mem_used_mb": ("MB", "GPU memory MB"),
        "power_w": ("W", "GPU power W"),
        "sm_clock_mhz": ("MHz", "GPU SM clock MHz"),
        "temp_c": ("C", "GPU temperature C"),
    },
    "container": {"cpu_pct": ("%", "container CPU %"), "mem_used_mb": ("MB", "container memory MB")},
}
SERIES_STATS = ("mean", "p95", "max")


def _result(name: str, unit: str, direction: Direction, label: str, speed: bool = False) -> MetricInfo:
    """A metric the workload's result document carries under its own name."""
    return MetricInfo(name, unit, direction, label, speed=speed, result_key=name)


_H, _L, _N = Direction.HIGHER, Direction.LOWER, Direction.NEITHER
_REGISTERED = [
    # The gate's speed metrics first: `compare --metric` lists them in this order.
    _result(SPEED, "img/s", _H, "train img/s", speed=True),
    _result("inference_img_per_s", "img/s", _H, "inference img/s", speed=True),
    _result("train_seconds", "s", _L, "train s", speed=True),
    MetricInfo(EPOCH_TIME, "s", _L, "epoch s", speed=True),
    _result("step_seconds_median", "s", _L, "step s", speed=True),
    _result("final_loss", "1", _L, "final loss"),
    _result("final_accuracy", "1", _H, "final accuracy"),
    _result("test_accuracy", "1", _H, "test accuracy"),
    _result("params", "count", _N, "parameters"),
    _result("peak_rss_mb", "MB", _L, "peak RSS MB"),
    _result("samples_per_epoch", "count", _N, "samples per epoch"),
    _result("validation_accuracy", "1", _H, "validation accuracy"),
    _result("inference_latency_p50_ms", "ms", _L, "inference p50 ms"),
    _result("inference_latency_p99_ms", "ms", _L, "inference p99 ms"),
    _result("peak_device_memory_mb", "MB", _L, "peak device memory MB"),
    _result(WARMUP, "s", _L, "warm-up s"),
    MetricInfo(TIMING_SUSPECT, "flag", _N, "timing suspect"),
    MetricInfo(ENERGY, "J", _L, "energy J"),
    MetricInfo(IMG_PER_JOULE, "img/J", _H, "img/J"),
    *(
        MetricInfo(f"{source}_{field}_{stat}", unit, _N, label)
        for source, fields in SAMPLED.items()
        for field, (unit, label) in fields.items()
        for stat in SERIES_STATS
    ),
    # The interference beside a cell (backends/interference.py).
    MetricInfo("cpu_other_cpus_mean", "CPUs", _N, "other work, mean CPUs"),
    MetricInfo("cpu_other_cpus_max", "CPUs", _N, "other work, peak CPUs"),
    MetricInfo("cell_cpus_mean", "CPUs", _N, "cell CPUs used"),
    MetricInfo("cell_cpus_allowed", "CPUs", _N, "cell CPUs allowed"),
    MetricInfo("cpu_steal_cpus_mean", "CPUs", _N, "stolen CPUs"),
    MetricInfo("host_load1_max", "1", _N, "peak load1"),
    MetricInfo("gpu_other_processes_max", "count", _N, "other GPU processes"),
    MetricInfo("gpu_other_mem_mb_max", "MB", _N, "other GPU memory MB"),
    MetricInfo("gpu_throttled_pct", "%", _N, "GPU throttled %"),
    MetricInfo("gpu_sm_clock_pct_of_max_mean", "%", _N, "GPU clock % of max"),
    MetricInfo(DISTURBED, "flag", _N, "disturbed"),
]
METRICS: dict[str, MetricInfo] = {info.name: info for info in _REGISTERED}
SPEED_METRICS = tuple(info.name for info in _REGISTERED if info.speed)
RESULT_METRICS = tuple(info for info in _REGISTERED if info.result_key)


def measured(name: str, value: float) -> Metric:
    """A registered metric's value with the registry's unit (KeyError for an unregistered name: a typo)."""
    return Metric(name, value, METRICS[name].unit)


def higher_is_better(name: str) -> bool:
    """For a speed metric: throughput is better higher, a time lower."""
    return METRICS[name].direction is Direction.HIGHER


def fmt(name: str, value: float) -> str:
    """`value` as the registry shows `name` (one decimal for a name it does not know)."""
    info = METRICS.get(name)
    return info.format(value) if info else one_decimal(value)
