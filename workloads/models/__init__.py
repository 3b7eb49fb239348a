"""Model families, one module each, with one builder per framework API.

Three APIs cover the five frameworks: ``keras`` (tf.keras, Keras 3 on JAX, keras-mxnet's
Keras 2.2.4), ``torch`` and ``gluon``. A builder receives the framework module and an
``InputSpec`` and returns an untrained network that outputs *logits*: the Keras adapter
appends the softmax, PyTorch and Gluon fold it into their cross-entropy loss, so the
parameters are the same everywhere. Builders import nothing at module level, so the
registry can be read without the framework installed; plugins are read only in a container
(``workloads.discover``), the host learns their models as ``ModelInfo``.

Parameter counts are *trainable* parameters (what the optimiser updates): BatchNorm's
running statistics are buffers in PyTorch, non-trainable weights in Keras and Gluon, and
counting them would make equal models look different.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from workloads.errors import RequestError
from workloads.models.base import APIS, INPUT_KINDS, Builder, InputSpec, Model, ModelInfo

__all__ = [
    "APIS",
    "INPUT_KINDS",
    "MODELS",
    "Builder",
    "InputSpec",
    "Model",
    "ModelInfo",
    "get",
    "load_plugins",
    "register",
]
MODELS: dict[str, Model] = {}


def register(model: Model) -> Model:
    """Add a model to the registry (built-in families and plugins alike)."""
    if model.input_kind not in INPUT_KINDS:
        raise RequestError(f"model {model.name!r}: input_kind must be one of {INPUT_KINDS}, got {model.input_kind!r}")
    if not model.apis():
        raise RequestError(f"model {model.name!r}: no builder given (keras=, torch= or gluon=)")
    existing = MODELS.get(model.name)
    if existing is not None and existing != model:
        raise RequestError(f"model {model.name!r} is already registered ({existing.description})")
    MODELS[model.name] = model
    return model


def get(name: str) -> Model:
    if name not in MODELS:
        raise RequestError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def load_plugins(directory: str | Path) -> list[str]:
    """Import every ``*.py`` module of ``directory``; each calls ``register``. Returns new model names.

    Errors name the file: a plugin that fails to import is a usage error, not a crash.
    """
    root = Path(directory)
    if not root.is_dir():
        raise RequestError(f"plugin folder {root} does not exist")
    before = set(MODELS)
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        name = f"benchmatrix_plugin_{digest}_{path.stem}"
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise RequestError(f"{path}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except RequestError as exc:
            del sys.modules[name]
            raise RequestError(f"{path}: {exc}") from exc
        except Exception as exc:
            del sys.modules[name]
            raise RequestError(f"{path}: plugin failed to import: {type(exc).__name__}: {exc}") from exc
    return sorted(set(MODELS) - before)


def _register_builtins() -> None:
    from workloads.models import cnn, lenet, lstm, mlp, resnet50, resnet_cifar, vgg

    for family in (mlp, cnn, lenet, resnet_cifar, vgg, resnet50, lstm):
        for model in family.MODELS:
            register(model)


_register_builtins()
