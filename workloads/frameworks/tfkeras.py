"""TensorFlow through ``tf.keras``: Keras 3 on TF 2.16+, Keras 2 on TF 2.15."""

from __future__ import annotations

from workloads.frameworks.keras_common import KerasAdapter


def create(options: dict[str, bool | None], lr: float, seed: int) -> KerasAdapter:
    import tensorflow as tf

    keras = tf.keras
    keras_version = getattr(keras, "__version__", None) or _keras_package_version()
    jit_compile = bool(options["jit_compile"])
    adapter = KerasAdapter(keras, keras_version, lr=lr, seed=seed, compile_kwargs={"jit_compile": jit_compile})
    adapter.versions = {"tensorflow": tf.__version__, "keras": keras_version}
    adapter.device = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    adapter.options = {"jit_compile": jit_compile}
    adapter.notes.append("model.fit runs a tf.function graph; jit_compile=false means no XLA, not eager mode")
    return adapter


def _keras_package_version() -> str:
    """TF 2.15's ``tf.keras`` has no ``__version__``; the ``keras`` package it wraps does."""
    import keras

    return str(keras.__version__)
