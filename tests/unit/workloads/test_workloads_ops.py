"""The operations benchmark's logic with a NumPy stand-in backend: every (op, size) timed after sync."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from orchestrator.run.result import metrics_from
from workloads import ops
from workloads.__main__ import main
from workloads.result import read_result


class NumpyBackend:
    """Computes each operation with NumPy and counts synchronisations."""

    device = "cpu"
    versions = {"numpy-backend": "1"}

    def __init__(self) -> None:
        self.synced = 0

    def from_numpy(self, array):
        return np.array(array)

    def from_list(self, values):
        return np.array(values, dtype=np.float32)

    def unary(self, name):
        return {
            "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
            "relu": lambda x: np.maximum(x, 0),
            "tanh": np.tanh,
            "softplus": lambda x: np.log1p(np.exp(x)),
            "softsign": lambda x: x / (1 + np.abs(x)),
            "flatten": np.ravel,
            "normalize": lambda x: x / np.linalg.norm(x, axis=1, keepdims=True),
        }[name]

    def dot(self, a, b):
        return np.dot(a, b)

    def gemm(self, a, b):
        return a @ b

    def sync(self, value):
        self.synced += 1


@pytest.fixture
def numpy_backend(monkeypatch):
    backend = NumpyBackend()
    module = types.ModuleType("workloads.ops.fake_ops")
    module.create = lambda: backend
    monkeypatch.setitem(sys.modules, "workloads.ops.fake_ops", module)
    monkeypatch.setitem(ops.BACKENDS, "pytorch", "fake_ops")
    return backend


def test_every_operation_is_defined_on_the_right_shapes(numpy_backend):
    found = ops.calls(numpy_backend, 8, np.random.default_rng(0))
    assert tuple(found) == ops.OPERATIONS
    shapes = {name: np.shape(call()) for name, call in found.items()}
    assert shapes["gemm"] == (8, 8) and shapes["dot"] == () and shapes["flatten"] == (64,)
    assert shapes["create_list"] == (8, 8) and shapes["normalize"] == (8, 8)


def test_timing_syncs_every_call_and_excludes_the_warmup(numpy_backend):
    seconds = ops.time_call(numpy_backend, lambda: np.zeros(3), repeats=7, warmup=2)
    assert numpy_backend.synced == 9 and seconds >= 0


def test_ops_run_writes_one_metric_per_op_and_size(numpy_backend, tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["run", "--framework", "pytorch", "--model", "ops", "--dataset", "none", "--out", str(out)]
    assert main([*args, "--ops-sizes", "4,16", "--ops-repeats", "3"]) == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["schema"] == "benchmatrix.result/1" and result["model"] == "ops"
    assert result["sizes"] == [4, 16] and result["repeats"] == 3
    names = [m["name"] for m in result["metrics"]]
    assert names == [ops.metric_name(op, n) for n in (4, 16) for op in ops.OPERATIONS]
    assert all(m["unit"] == "s" and m["value"] > 0 for m in result["metrics"])
    assert "first 3 calls of each (op, size) excluded" in result["warmup"]["note"]
    stored = {m.name: m.unit for m in metrics_from(read_result(out))}
    assert stored["op_gemm_n16"] == "s" and stored["peak_rss_mb"] == "MB" and len(stored) == 22 + 1


def test_bad_sizes_are_refused(tmp_path: Path):
    args = ["run", "--framework", "pytorch", "--model", "ops", "--dataset", "none", "--out", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--ops-sizes", "4,x"])
    assert exit_info.value.code == 2
