"""Keras code shared by the tensorflow, jax and keras-mxnet adapters.

All three train the same functional model with ``model.fit``, as a Keras user would; only
the Keras module, its data layout and its compile options differ. The Keras API
differences that matter are 2.2.4's: ``Adam(lr=...)``, no mixed precision, NumPy-only ``fit``.

Timing: each epoch of ``fit`` is one window. The callback has no per-batch hook, so Keras 3 keeps its
asynchronous dispatch (a batch hook makes it turn every step's logs into floats, a synchronisation
per step); ``fit`` itself materialises the epoch's logs before ``on_epoch_end``, which ends the window.
Warm-up is one untimed ``fit`` over the warm-up steps' samples (every batch shape), whose compiled
train function the timed ``fit`` reuses.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from workloads.timing import Recorder, steps_per_epoch, warmup_indices

if TYPE_CHECKING:
    from workloads.models import InputSpec, Model

MIXED_POLICIES = {"bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
RMSPROP_RHO = 0.9  # set explicitly in every framework: PyTorch's default is 0.99


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
        optimizer: str,
        channels_first: bool = False,
        precision: str = "fp32",
        compile_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.keras = keras
        self.lr = lr
        self.optimizer = optimizer
        self.channels_first = channels_first
        self.compile_kwargs = compile_kwargs or {}
        self.legacy = version_tuple(keras_version) < (2, 3)
        self.versions: dict[str, str] = {}
        self.device = "cpu"
        self.device_bytes: Optional[int] = None  # the training device's memory, set on GPUs by create()
        self.options: dict[str, Any] = {}
        self.notes: list[str] = []
        self.model: Any = None
        self.rng = np.random.default_rng(seed)
        self.input = "host"
        self.x: Any = None
        self.y: Any = None
        # Data parallelism: the scope models are built in (a tf.distribute strategy's) and what
        # turns the built model into its replicated form (keras-mxnet's multi_gpu_model).
        self.scope: Callable[[], Any] = contextlib.nullcontext
        self.replicate: Callable[[Any], Any] = lambda model: model
        keras.backend.clear_session()  # a fresh graph and name scope for each model built in a process
        keras.backend.set_image_data_format("channels_first" if channels_first else "channels_last")
        self._mixed = precision != "fp32"
        if self._mixed:
            keras.mixed_precision.set_global_policy(MIXED_POLICIES[precision])
            self.notes.append(f"Keras mixed precision policy {MIXED_POLICIES[precision]}; softmax in float32")
        if hasattr(keras.utils, "set_random_seed"):
            keras.utils.set_random_seed(seed)
        else:
            random.seed(seed)
            np.random.seed(seed)

    def build(self, model: Model, inputs: InputSpec) -> int:
        keras = self.keras
        with self.scope():
            net = model.keras(keras, inputs)
            softmax = keras.layers.Activation("softmax", **({"dtype": "float32"} if self._mixed else {}))
            self.model = self.replicate(keras.Model(net.inputs, softmax(net.outputs[0])))
            self.model.compile(
                optimizer=self._optimizer(),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                **self.compile_kwargs,
            )
        return sum(self._size(weight) for weight in self.model.trainable_weights)

    def _size(self, weight: Any) -> int:
        if self.legacy:
            return int(self.keras.backend.count_params(weight))
        return int(np.prod(tuple(weight.shape)))

    def _optimizer(self) -> Any:
        optimizers = self.keras.optimizers
        rate = {"lr": self.lr} if self.legacy else {"learning_rate": self.lr}
        if self.optimizer == "sgd":
            return optimizers.SGD(**rate)
        if self.optimizer == "rmsprop":
            return optimizers.RMSprop(rho=RMSPROP_RHO, **rate)
        return optimizers.Adam(**rate)

    def place(self, x: np.ndarray, y: np.ndarray, where: str) -> None:
        self.input = where
        self.x, self.y = x, y
        if where == "host":
            self.notes.append(
                "input host: model.fit on NumPy arrays, shuffled and batched by Keras's own data adapter "
                "(tf.data with prefetch on TensorFlow)"
            )
        elif self.legacy:
            self.notes.append(
                "input device: Keras 2.2.4's fit takes NumPy arrays only, so each epoch is permuted in host memory "
                "before its clock and fit copies each batch from there"
            )
        else:
            ops = self.keras.ops
            self.x, self.y = ops.convert_to_tensor(x), ops.convert_to_tensor(y)
            self.notes.append(
                "input device: the training split is a backend tensor on the device, permuted there per epoch "
                "(keras.ops.take) before its clock; fit gets the permuted tensors, shuffle off"
            )

    def synchronize(self) -> None:
        """Nothing to wait for: fit materialises its logs at each epoch's end."""

    def _taken(self, indices: np.ndarray) -> tuple[Any, Any]:
        """The split's samples in ``indices`` order, gathered where the split lives, finished."""
        if isinstance(self.x, np.ndarray):
            return self.x[indices], self.y[indices]
        ops = self.keras.ops
        order = ops.convert_to_tensor(indices)
        xs, ys = ops.take(self.x, order, axis=0), ops.take(self.y, order, axis=0)
        ops.convert_to_numpy(ops.sum(xs[:1]) + ops.cast(ops.sum(ys[:1]), "float32"))  # waits for the gathers
        return xs, ys

    def warm_up(self, batch_sizes: list[int]) -> None:
        xs, ys = self._taken(np.concatenate(warmup_indices(batch_sizes, len(self.y))))
        # batch_sizes is full batches then at most one smaller: fit cuts exactly those steps.
        self.model.fit(xs, ys, batch_size=batch_sizes[0], epochs=1, shuffle=False, verbose=0)

    def fit(self, batch_size: int, epochs: int, recorder: Recorder) -> None:
        samples = len(self.y)
        callback = _timing_callback(self.keras, recorder, samples, batch_size)
        if self.input == "host":
            self.model.fit(
                self.x, self.y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[callback]
            )
            return
        for _ in range(epochs):
            xs, ys = self._taken(self.rng.permutation(samples))
            self.model.fit(xs, ys, batch_size=batch_size, epochs=1, shuffle=False, verbose=0, callbacks=[callback])

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(x))

    def peak_device_memory_mb(self) -> Optional[float]:
        return None

    def device_memory_bytes(self) -> Optional[int]:
        return self.device_bytes


def _timing_callback(keras: ModuleType, recorder: Recorder, samples: int, batch_size: int) -> Any:
    """A callback that times each epoch of ``fit`` as one window of all its steps."""

    class TimingCallback(keras.callbacks.Callback):  # type: ignore[name-defined,misc]
        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            recorder.start_epoch()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            recorder.record_window(steps_per_epoch(samples, batch_size), samples)
            logs = logs or {}
            accuracy = logs.get("accuracy", logs.get("acc", float("nan")))
            recorder.end_epoch(float(logs.get("loss", float("nan"))), float(accuracy))

    return TimingCallback()
