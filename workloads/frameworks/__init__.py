"""One adapter per framework, looked up by the CLI's ``--framework`` name.

Options are declared here rather than in the adapters so that a bad option is refused
before the framework is imported: a clean exit 2 in a second, not after a slow import.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from workloads.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from workloads.timing import Recorder


@dataclass(frozen=True)
class FrameworkSpec:
    """Where the adapter lives and its options with their defaults.

    A default of None means "the framework's own default", recorded as resolved.
    """

    module: str
    options: dict[str, bool | None]


FRAMEWORKS: dict[str, FrameworkSpec] = {
    "tensorflow": FrameworkSpec("tfkeras", {"jit_compile": False}),
    "jax": FrameworkSpec("jaxkeras", {"jit_compile": None}),
    "keras-mxnet": FrameworkSpec("kerasmx", {}),
    "pytorch": FrameworkSpec("torchloop", {"compile": False}),
    "mxnet": FrameworkSpec("gluon", {"hybridize": False}),
}

MODELS = ("mlp", "cnn")


class Adapter(Protocol):
    """What the runner needs from a framework; ``build`` must be called before the rest."""

    versions: dict[str, str]
    device: str
    options: dict[str, Any]
    notes: list[str]

    def build(self, model: str) -> int:
        """Build and compile ``model``; return its parameter count as the framework counts it."""

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, recorder: Recorder) -> None:
        """Train on float32 ``(N, 28, 28)`` images, reporting every step to ``recorder``."""

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Return class scores ``(N, 10)`` as a host NumPy array (so the work is finished)."""


def parse_options(framework: str, pairs: list[str]) -> dict[str, bool | None]:
    """Turn ``KEY=true|false`` pairs into the framework's options, defaults filled in."""
    known = FRAMEWORKS[framework].options
    options = dict(known)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if key not in known:
            names = ", ".join(sorted(known)) or "none"
            raise UsageError(f"unknown option {key!r} for {framework}; known options: {names}")
        if not sep or value.lower() not in ("true", "false"):
            raise UsageError(f"option {pair!r}: expected {key}=true or {key}=false")
        options[key] = value.lower() == "true"
    return options


def create(framework: str, options: dict[str, bool | None], lr: float, seed: int) -> Adapter:
    """Import the framework's adapter (and so the framework) and construct it."""
    module = importlib.import_module(f"{__name__}.{FRAMEWORKS[framework].module}")
    return module.create(options=options, lr=lr, seed=seed)
