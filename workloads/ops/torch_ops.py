"""PyTorch eager operations; CUDA is synchronised after each call, CPU calls are synchronous."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TorchBackend:
    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.device = "gpu" if self.dev.type == "cuda" else "cpu"
        self.versions = {"torch": torch.__version__}

    def from_numpy(self, array: Any) -> Any:
        return self.torch.tensor(array, device=self.dev)  # copies; torch.from_numpy would share memory

    def from_list(self, values: list[list[float]]) -> Any:
        return self.torch.tensor(values, dtype=self.torch.float32, device=self.dev)

    def unary(self, name: str) -> Callable[[Any], Any]:
        functional = self.torch.nn.functional
        return {
            "sigmoid": self.torch.sigmoid,
            "relu": self.torch.relu,
            "tanh": self.torch.tanh,
            "softplus": functional.softplus,
            "softsign": functional.softsign,
            "flatten": self.torch.flatten,
            "normalize": lambda x: functional.normalize(x, dim=1),
        }[name]

    def dot(self, a: Any, b: Any) -> Any:
        return self.torch.dot(a, b)

    def gemm(self, a: Any, b: Any) -> Any:
        return self.torch.matmul(a, b)

    def sync(self, value: Any) -> None:
        if self.device == "gpu":
            self.torch.cuda.synchronize()


def create() -> TorchBackend:
    return TorchBackend()
