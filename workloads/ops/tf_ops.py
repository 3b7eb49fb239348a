"""TensorFlow eager operations, synchronised with ``tf.test.experimental.sync_devices``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TensorFlowBackend:
    def __init__(self) -> None:
        import tensorflow as tf

        self.tf = tf
        self.device = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
        self.versions = {"tensorflow": tf.__version__}
        # TF ≥ 2.13; eager CPU execution is synchronous, so older versions need nothing there.
        self._sync = getattr(tf.test.experimental, "sync_devices", None)

    def from_numpy(self, array: Any) -> Any:
        return self.tf.constant(array)

    def from_list(self, values: list[list[float]]) -> Any:
        return self.tf.constant(values, dtype=self.tf.float32)

    def unary(self, name: str) -> Callable[[Any], Any]:
        tf = self.tf
        return {
            "sigmoid": tf.math.sigmoid,
            "relu": tf.nn.relu,
            "tanh": tf.math.tanh,
            "softplus": tf.math.softplus,
            "softsign": tf.nn.softsign,
            "flatten": lambda x: tf.reshape(x, [-1]),
            "normalize": lambda x: tf.math.l2_normalize(x, axis=1),
        }[name]

    def dot(self, a: Any, b: Any) -> Any:
        return self.tf.tensordot(a, b, axes=1)

    def gemm(self, a: Any, b: Any) -> Any:
        return self.tf.linalg.matmul(a, b)

    def sync(self, value: Any) -> None:
        if self._sync is not None and self.device == "gpu":
            self._sync()


def create() -> TensorFlowBackend:
    return TensorFlowBackend()
