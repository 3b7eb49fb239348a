"""MXNet NDArray operations; the engine is asynchronous, so each result is ``wait_to_read``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class MXNetBackend:
    def __init__(self) -> None:
        import mxnet as mx

        self.mx = mx
        self.ctx = mx.gpu(0) if mx.context.num_gpus() > 0 else mx.cpu()
        self.device = "gpu" if mx.context.num_gpus() > 0 else "cpu"
        self.versions = {"mxnet": mx.__version__}

    def from_numpy(self, array: Any) -> Any:
        return self.mx.nd.array(array, ctx=self.ctx, dtype="float32")

    def from_list(self, values: list[list[float]]) -> Any:
        return self.mx.nd.array(values, ctx=self.ctx, dtype="float32")

    def unary(self, name: str) -> Callable[[Any], Any]:
        nd = self.mx.nd
        return {
            "sigmoid": nd.sigmoid,
            "relu": nd.relu,
            "tanh": nd.tanh,
            "softplus": lambda x: nd.Activation(x, act_type="softrelu"),
            "softsign": nd.softsign,
            "flatten": lambda x: nd.reshape(x, shape=(-1,)),
            "normalize": lambda x: nd.L2Normalization(x, mode="instance"),
        }[name]

    def dot(self, a: Any, b: Any) -> Any:
        return self.mx.nd.dot(a, b)

    def gemm(self, a: Any, b: Any) -> Any:
        return self.mx.nd.dot(a, b)

    def sync(self, value: Any) -> None:
        value.wait_to_read()


def create() -> MXNetBackend:
    return MXNetBackend()
