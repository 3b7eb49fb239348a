"""TensorFlow through ``tf.keras``: Keras 3 on TF 2.16+, Keras 2 on TF 2.15."""

from __future__ import annotations

from typing import Any, Optional

from workloads.frameworks import OptionValue
from workloads.frameworks.keras_common import KerasAdapter


def create(options: dict[str, OptionValue], lr: float, seed: int, optimizer: str) -> KerasAdapter:
    import tensorflow as tf

    keras = tf.keras
    keras_version = getattr(keras, "__version__", None) or _keras_package_version()
    run_eagerly = bool(options["run_eagerly"])
    adapter = _TensorFlowAdapter(
        keras,
        keras_version,
        lr=lr,
        seed=seed,
        optimizer=optimizer,
        channels_first=options["data_format"] == "channels_first",
        precision=str(options["precision"]),
        compile_kwargs={"jit_compile": bool(options["jit_compile"]), "run_eagerly": run_eagerly},
    )
    adapter.tf = tf
    adapter.versions = {"tensorflow": tf.__version__, "keras": keras_version}
    adapter.device = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    adapter.options = dict(options)
    adapter.notes.append(
        "run_eagerly: every step runs op by op (no tf.function)"
        if run_eagerly
        else "model.fit runs a tf.function graph; jit_compile=false means no XLA, not eager mode"
    )
    return adapter


class _TensorFlowAdapter(KerasAdapter):
    tf: Any = None

    def peak_device_memory_mb(self) -> Optional[float]:
        if self.device != "gpu":
            return None
        return self.tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def _keras_package_version() -> str:
    """TF 2.15's ``tf.keras`` has no ``__version__``; the ``keras`` package it wraps does."""
    import keras

    return str(keras.__version__)
