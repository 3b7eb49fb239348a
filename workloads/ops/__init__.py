"""Seed 002's "Benchmark A": low-level operations over a size sweep, one metric per (op, size).

Each operation runs on an n×n float32 matrix (``dot``: two vectors of n·n elements;
``create_*``: building that matrix from a NumPy array or a nested Python list with the
framework's usual constructor: ``torch.tensor``, ``tf.constant``, ``jnp.array``,
``mx.nd.array``; on a CPU TensorFlow and JAX may share the NumPy buffer). Inputs are
made before the clock starts; each timed call ends with the framework's own
synchronisation (``block_until_ready``, ``wait_to_read``, CUDA synchronise, TF's
``sync_devices``), so asynchronous dispatch is never what is timed. The value stored is the
median of ``repeats`` calls after ``warmup`` untimed ones, in seconds.
"""

from __future__ import annotations

import functools
import importlib
import platform
import re
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any, Optional, Protocol

import numpy as np

from workloads.crashes import report_native_crashes
from workloads.errors import RequestError
from workloads.result import Metric, OpsResult, Warmup

OPS_MODEL = "ops"
NO_DATASET = "none"
OPERATIONS = (
    "create_numpy",
    "create_list",
    "sigmoid",
    "relu",
    "tanh",
    "softplus",
    "softsign",
    "dot",
    "gemm",
    "flatten",
    "normalize",
)
DEFAULT_SIZES = (64, 256, 1024)
DEFAULT_REPEATS = 20
WARMUP_CALLS = 3
# keras-mxnet's backend is symbolic: it has no eager operations of its own to time.
BACKENDS = {"tensorflow": "tf_ops", "jax": "jax_ops", "pytorch": "torch_ops", "mxnet": "mx_ops"}


class Backend(Protocol):
    device: str
    versions: dict[str, str]

    def from_numpy(self, array: np.ndarray) -> Any: ...

    def from_list(self, values: list[list[float]]) -> Any: ...

    def unary(self, name: str) -> Callable[[Any], Any]: ...

    def dot(self, a: Any, b: Any) -> Any: ...

    def gemm(self, a: Any, b: Any) -> Any: ...

    def sync(self, value: Any) -> None: ...


# The one spelling of an (op, size) metric: written here, parsed by the host's report.
METRIC_NAME = re.compile(r"^op_(?P<op>[A-Za-z0-9_]+)_n(?P<size>[0-9]+)$")


def metric_name(operation: str, size: int) -> str:
    return f"op_{operation}_n{size}"


def parse_metric_name(name: str) -> Optional[tuple[str, int]]:
    """(operation, size) of a metric `metric_name` wrote; None for any other metric."""
    found = METRIC_NAME.match(name)
    return (found["op"], int(found["size"])) if found else None


def check_framework(framework: str) -> None:
    if framework not in BACKENDS:
        raise RequestError(
            f"the {OPS_MODEL} benchmark has no {framework} backend (it has: {', '.join(sorted(BACKENDS))})"
        )


def calls(backend: Backend, size: int, rng: np.random.Generator) -> dict[str, Callable[[], Any]]:
    """Each operation as a no-argument call on inputs made now, outside any timing."""
    matrix = rng.standard_normal((size, size)).astype(np.float32)
    values = matrix.tolist()
    a, b = backend.from_numpy(matrix), backend.from_numpy(rng.standard_normal((size, size)).astype(np.float32))
    u = backend.from_numpy(matrix.reshape(-1))
    v = backend.from_numpy(rng.standard_normal(size * size).astype(np.float32))
    found: dict[str, Callable[[], Any]] = {
        "create_numpy": lambda: backend.from_numpy(matrix),
        "create_list": lambda: backend.from_list(values),
        "dot": lambda: backend.dot(u, v),
        "gemm": lambda: backend.gemm(a, b),
    }
    for name in ("sigmoid", "relu", "tanh", "softplus", "softsign", "flatten", "normalize"):
        found[name] = functools.partial(backend.unary(name), a)
    return {name: found[name] for name in OPERATIONS}


def time_call(backend: Backend, call: Callable[[], Any], repeats: int, warmup: int = WARMUP_CALLS) -> float:
    """Median seconds of ``repeats`` synchronised calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        backend.sync(call())
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        backend.sync(call())
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds)


def run_ops(framework: str, sizes: tuple[int, ...], repeats: int, seed: int, options: dict[str, Any]) -> OpsResult:
    check_framework(framework)
    module = importlib.import_module(f"{__name__}.{BACKENDS[framework]}")
    backend: Backend = module.create()
    report_native_crashes()
    rng = np.random.default_rng(seed)
    metrics = []
    for size in sizes:
        for operation, call in calls(backend, size, rng).items():
            metrics.append(Metric(metric_name(operation, size), time_call(backend, call, repeats), "s"))
            print(f"{operation:>12} n={size:<6} {metrics[-1].value * 1e6:12.1f} µs", flush=True)
    return OpsResult(
        framework=framework,
        versions={"python": platform.python_version(), "numpy": np.__version__, **backend.versions},
        model=OPS_MODEL,
        dataset=NO_DATASET,
        device=backend.device,
        options=options,
        warmup=Warmup(
            kind="calls",
            steps=WARMUP_CALLS,
            note=f"first {WARMUP_CALLS} calls of each (op, size) excluded; "
            f"value = median of {repeats} synchronised calls",
        ),
        sizes=list(sizes),
        repeats=repeats,
        metrics=metrics,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        seed=seed,
        notes=[f"matrices are n×n float32; dot uses vectors of n·n elements; eager operations on {backend.device}"],
    )
