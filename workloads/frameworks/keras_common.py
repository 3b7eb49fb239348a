"""Keras code shared by the tensorflow, jax and keras-mxnet adapters.

All three train the same ``Sequential`` model with ``model.fit``, as a Keras user would;
only the Keras module, its data layout and its compile options differ. The one Keras
API difference that matters is 2.2.4's: ``input_shape=`` and ``Adam(lr=...)``.
"""

from __future__ import annotations

import random
from types import ModuleType
from typing import Any

import numpy as np

from workloads.timing import Recorder, step_samples


def version_tuple(version: str) -> tuple[int, ...]:
    """``"2.2.4.3"`` → ``(2, 2, 4, 3)``, ignoring suffixes such as ``rc1``."""
    parts = []
    for piece in version.split("."):
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


class KerasAdapter:
    """Builds, trains and runs inference with one Keras model."""

    def __init__(
        self,
        keras: ModuleType,
        keras_version: str,
        *,
        lr: float,
        seed: int,
        channels_first: bool = False,
        compile_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.keras = keras
        self.lr = lr
        self.channels_first = channels_first
        self.compile_kwargs = compile_kwargs or {}
        self.legacy = version_tuple(keras_version) < (2, 3)
        self.versions: dict[str, str] = {}
        self.device = "cpu"
        self.options: dict[str, Any] = {}
        self.notes: list[str] = []
        self.model: Any = None
        self._shape: tuple[int, ...] = ()
        if hasattr(keras.utils, "set_random_seed"):
            keras.utils.set_random_seed(seed)
        else:
            random.seed(seed)
            np.random.seed(seed)

    def _image_shape(self, model: str) -> tuple[int, ...]:
        if model == "mlp":
            return (28, 28)
        return (1, 28, 28) if self.channels_first else (28, 28, 1)

    def build(self, model: str) -> int:
        layers = self.keras.layers
        shape = self._image_shape(model)
        first: dict[str, Any] = {"input_shape": shape} if self.legacy else {}
        if model == "mlp":
            stack = [
                layers.Flatten(**first),
                layers.Dense(128, activation="relu"),
                layers.Dense(10, activation="softmax"),
            ]
        else:
            stack = [
                layers.Conv2D(64, kernel_size=3, activation="relu", **first),
                layers.Conv2D(32, kernel_size=3, activation="relu"),
                layers.Flatten(),
                layers.Dense(10, activation="softmax"),
            ]
        if not self.legacy:
            stack.insert(0, self.keras.Input(shape=shape))
        self.model = self.keras.Sequential(stack)
        self._shape = shape
        adam = self.keras.optimizers.Adam
        optimizer = adam(lr=self.lr) if self.legacy else adam(learning_rate=self.lr)
        self.model.compile(
            optimizer=optimizer,
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            **self.compile_kwargs,
        )
        return int(self.model.count_params())

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        return x.reshape((len(x), *self._shape))

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, recorder: Recorder) -> None:
        callback = _timing_callback(self.keras, recorder, len(x), batch_size)
        self.model.fit(
            self._inputs(x),
            y,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=True,
            verbose=0,
            callbacks=[callback],
        )

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        return np.asarray(self.model.predict(self._inputs(x), batch_size=batch_size, verbose=0))


def _timing_callback(keras: ModuleType, recorder: Recorder, samples: int, batch_size: int) -> Any:
    """A callback that forwards Keras's epoch and batch events to ``recorder``."""

    class TimingCallback(keras.callbacks.Callback):  # type: ignore[name-defined,misc]
        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            recorder.start_epoch()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            # Reading the loss waits for the step's result: the timestamp marks finished work.
            if logs and "loss" in logs:
                float(logs["loss"])
            recorder.step(step_samples(samples, batch_size, batch))

        # Keras 2.2.4 has only the older name; later versions call just the newer one.
        on_batch_end = on_train_batch_end

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            accuracy = logs.get("accuracy", logs.get("acc", float("nan")))
            recorder.end_epoch(float(logs.get("loss", float("nan"))), float(accuracy))

    return TimingCallback()
