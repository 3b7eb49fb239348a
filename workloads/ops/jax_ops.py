"""JAX operations (``jax.numpy``/``jax.nn``, dispatched op by op); each result is ``block_until_ready``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class JaxBackend:
    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp

        self.jax = jax
        self.jnp = jnp
        self.device = "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"
        self.versions = {"jax": jax.__version__}

    def from_numpy(self, array: Any) -> Any:
        return self.jnp.array(array)

    def from_list(self, values: list[list[float]]) -> Any:
        return self.jnp.array(values, dtype=self.jnp.float32)

    def unary(self, name: str) -> Callable[[Any], Any]:
        jnp, nn = self.jnp, self.jax.nn
        return {
            "sigmoid": nn.sigmoid,
            "relu": nn.relu,
            "tanh": jnp.tanh,
            "softplus": nn.softplus,
            "softsign": nn.soft_sign,
            "flatten": jnp.ravel,
            "normalize": lambda x: x / jnp.linalg.norm(x, axis=1, keepdims=True),
        }[name]

    def dot(self, a: Any, b: Any) -> Any:
        return self.jnp.dot(a, b)

    def gemm(self, a: Any, b: Any) -> Any:
        return self.jnp.matmul(a, b)

    def sync(self, value: Any) -> None:
        value.block_until_ready()


def create() -> JaxBackend:
    return JaxBackend()
