"""Keras code shared by the tensorflow, jax and keras-mxnet adapters.

All three build and compile the same functional model; only the Keras module, its data layout and
its compile options differ. The Keras API differences that matter are 2.2.4's: ``Adam(lr=...)``, no
mixed precision, NumPy-only ``fit``.

Two ways to train, chosen by ``input``:

- ``device`` on Keras 3 (one replica): a **resident loop**. The split is a backend tensor on the
  device, permuted there before each epoch's clock; every step is Keras's own ``train_step``,
  compiled by the backend (``jax.jit`` with its explicit state on JAX, ``tf.function`` on
  TensorFlow; a ``CompiledStep``), over a slice of that tensor taken on the device, so no batch
  passes through host memory. ``model.fit`` would not do that: its array data adapter converts the
  tensors to NumPy and copies each batch back inside the timed epoch. Windows of K steps end with a
  real synchronisation (``CompiledStep.wait``), like PyTorch's, so the self-check sees inside an epoch.
- ``host``, keras-mxnet (2.2.4 takes NumPy only) and several replicas (Keras's distribution owns the
  batch's placement): ``model.fit``, as a Keras user calls it, each epoch one window. The callback
  has no per-batch hook, so Keras 3 keeps its asynchronous dispatch (a batch hook makes it turn every
  step's logs into floats, a synchronisation per step); ``fit`` materialises the epoch's logs before
  ``on_epoch_end``, which ends the window. Warm-up is one untimed ``fit`` over the warm-up steps'
  samples (every batch shape), whose compiled train function the timed ``fit`` reuses.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Optional, Protocol

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


class CompiledStep(Protocol):
    """Keras 3's own ``train_step`` as its backend compiles it, called by the resident loop."""

    def start(self, x: Any, y: Any) -> None:
        """An epoch (or the warm-up) begins: optimizer and metric variables built on first use (``x``,
        ``y``: one batch), metrics reset, the model's state taken for the steps."""

    def __call__(self, xs: Any, ys: Any, start: int, stop: int) -> None:
        """Dispatch one training step on samples ``start:stop`` of ``xs``, ``ys`` (tensors on the device),
        sliced there; do not wait for it."""

    def wait(self) -> None:
        """Block until every dispatched step has finished."""

    def finish(self) -> tuple[float, float]:
        """Give the steps' state back to the model; return the epoch's loss and accuracy (Keras's
        running means, as ``fit`` reports them)."""


def logged_figures(logs: dict[str, Any]) -> tuple[float, float]:
    """Loss and accuracy from Keras's logs (``acc`` in Keras 2.2.4)."""
    return float(logs.get("loss", float("nan"))), float(logs.get("accuracy", logs.get("acc", float("nan"))))


def build_training_state(model: Any, x: Any, y: Any) -> None:
    """Create the optimizer's and the compiled metrics' variables, as ``fit`` does before its first
    step, without training: a compiled step cannot create variables."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.compute_metrics(x, y, model(x, training=False), sample_weight=None)
    model.reset_metrics()


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
        # The resident loop's compiled step (Keras 3 backends with one replica set it; None: fit).
        self.step: Optional[CompiledStep] = None
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
            builder = model.keras
            assert builder is not None, f"{model.name}: pairing refuses a model without a keras builder first"
            net = builder(keras, inputs)
            softmax = keras.layers.Activation("softmax", **({"dtype": "float32"} if self._mixed else {}))
            self.model = self.replicate(keras.Model(net.inputs, softmax(net.outputs[0])))
            self.model.compile(
                optimizer=self._optimizer(),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                **self.compile_kwargs,
            )
        self.step = self.compiled_step()
        return sum(self._size(weight) for weight in self.model.trainable_weights)

    def compiled_step(self) -> Optional[CompiledStep]:
        """The backend's compiled train step for the resident loop; None trains with ``fit``."""
        return None

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
            if self.step is None:
                self.notes.append(
                    "input device: the training split is a backend tensor on the device, permuted there per epoch "
                    "(keras.ops.take) before its clock; fit gets the permuted tensors, shuffle off, and its "
                    "data adapter copies them through host memory inside the timed epoch"
                )
            else:
                self.notes.append(
                    "input device: the training split is a backend tensor on the device, permuted there per epoch "
                    "(keras.ops.take) before its clock; each batch is a slice of it taken on the device and fed "
                    "to Keras's own compiled train_step (no fit, no host copy)"
                )

    @property
    def resident(self) -> bool:
        """Whether training is the resident loop (else ``fit``)."""
        return self.step is not None and self.input == "device"

    def synchronize(self) -> None:
        """The resident loop waits for its dispatched steps; fit materialises its logs at each epoch's end."""
        if self.resident:
            self.step.wait()  # type: ignore[union-attr]

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
        if self.resident:
            self._warm_up_resident(batch_sizes)
            return
        xs, ys = self._taken(np.concatenate(warmup_indices(batch_sizes, len(self.y))))
        # batch_sizes is full batches then at most one smaller: fit cuts exactly those steps.
        self.model.fit(xs, ys, batch_size=batch_sizes[0], epochs=1, shuffle=False, verbose=0)

    def _warm_up_resident(self, batch_sizes: list[int]) -> None:
        """The warm-up steps on consecutive slices of the split itself (a tensor of the epochs' shape, so
        JAX compiles the very function the epochs call), from its start again where a batch would not fit."""
        step: CompiledStep = self.step  # type: ignore[assignment]
        xs, ys = self.x, self.y
        step.start(xs[:1], ys[:1])
        start = 0
        for size in batch_sizes:
            start = 0 if start + size > len(self.y) else start
            step(xs, ys, start, start + size)
            start += size
        step.wait()
        step.finish()

    def fit(self, batch_size: int, epochs: int, recorder: Recorder) -> None:
        if self.resident:
            self._fit_resident(batch_size, epochs, recorder)
            return
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

    def _fit_resident(self, batch_size: int, epochs: int, recorder: Recorder) -> None:
        """The PyTorch loop's shape: permute on the device, start the clock, dispatch the compiled step
        on consecutive device slices (the recorder synchronises at window ends), stop the clock, then
        read the epoch's loss and accuracy."""
        step: CompiledStep = self.step  # type: ignore[assignment]
        samples = len(self.y)
        for _ in range(epochs):
            xs, ys = self._taken(self.rng.permutation(samples))
            step.start(xs[:1], ys[:1])
            recorder.start_epoch()
            for start in range(0, samples, batch_size):
                stop = min(start + batch_size, samples)
                step(xs, ys, start, stop)
                recorder.step(stop - start)
            recorder.stop_epoch()
            recorder.end_epoch(*step.finish())

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
            recorder.end_epoch(*logged_figures(logs or {}))

    return TimingCallback()
