"""TensorFlow through ``tf.keras``: Keras 3 on TF 2.16+, Keras 2 on TF 2.15.

With ``input=device`` and one replica on Keras 3, each step is Keras's own ``model.train_step`` under
``tf.function`` (``jit_compile`` as compiled; eager with ``run_eagerly``) on a slice of the resident
split; ``input=host``, several replicas and Keras 2 train with ``model.fit``.

Replicas are ``tf.distribute.MirroredStrategy`` over the first N GPUs, or over N logical CPU
devices carved out of the host CPU when there is no GPU. ``gpu_memory`` is seed 000's memory
policy: TensorFlow's default maps nearly all of each GPU's memory up front; ``growth`` allocates
as needed (``set_memory_growth``); a fraction caps each GPU at that share of its memory.
"""

from __future__ import annotations

import contextlib
import subprocess
from typing import Any, Optional

from workloads.errors import RequestError
from workloads.frameworks import OptionValue
from workloads.frameworks.keras_common import (
    CompiledStep,
    KerasAdapter,
    build_training_state,
    logged_figures,
    version_tuple,
)


def create(options: dict[str, OptionValue], lr: float, seed: int, optimizer: str, replicas: int = 1) -> KerasAdapter:
    import tensorflow as tf

    # Device settings must come before TensorFlow initialises its devices, so before Keras runs.
    gpus = tf.config.list_physical_devices("GPU")
    memory_note = _memory_policy(tf, gpus, str(options["gpu_memory"]))
    devices = _replica_devices(tf, gpus, replicas)

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
    adapter.replicas = replicas
    adapter.versions = {"tensorflow": tf.__version__, "keras": keras_version}
    adapter.device = "gpu" if gpus else "cpu"
    if gpus:
        with contextlib.suppress(RequestError):  # unknown: the default input placement says so
            adapter.device_bytes = _total_memory_mb(0) * 2**20
    adapter.options = dict(options)
    if memory_note:
        adapter.notes.append(memory_note)
    if devices:
        strategy = tf.distribute.MirroredStrategy(devices)
        adapter.scope = strategy.scope
        adapter.first_device_predict = tf.function(lambda batch: adapter.model(batch, training=False))
        adapter.notes.append(f"tf.distribute.MirroredStrategy over {', '.join(devices)}")
        adapter.notes.append(
            "inference runs on the first replica's device: Keras's predict_on_batch under MirroredStrategy "
            "gives every replica the whole batch"
        )
    adapter.notes.append(
        "run_eagerly: every step runs op by op (no tf.function)"
        if run_eagerly
        else "the train step is a tf.function graph; jit_compile=false means no XLA, not eager mode"
    )
    return adapter


def _memory_policy(tf: Any, gpus: list, policy: str) -> Optional[str]:
    """Apply a ``gpu_memory`` option to every GPU; say what was done."""
    if not gpus:
        return None
    if policy == "all":
        return "GPU memory: all (TensorFlow's own policy: nearly all of each GPU mapped up front)"
    if policy == "growth":
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        return "GPU memory: allow_growth (allocated as needed)"
    fraction = float(policy)
    for index, gpu in enumerate(gpus):
        limit = int(_total_memory_mb(index) * fraction)
        tf.config.set_logical_device_configuration(gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)])
    return f"GPU memory: capped at {fraction:.0%} of each GPU (the per_process_gpu_memory_fraction policy)"


def _total_memory_mb(index: int) -> int:
    """A GPU's memory as the driver reports it; TensorFlow 2 takes memory caps in MB, not fractions."""
    command = ["nvidia-smi", f"--id={index}", "--query-gpu=memory.total", "--format=csv,noheader,nounits"]
    try:
        return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError, ValueError) as exc:
        raise RequestError(f"gpu_memory fraction: cannot read GPU {index}'s memory with nvidia-smi: {exc}") from exc


def _replica_devices(tf: Any, gpus: list, replicas: int) -> list[str]:
    """The devices MirroredStrategy mirrors over; none for a single replica."""
    if replicas == 1:
        return []
    if gpus:
        if len(gpus) < replicas:
            raise RequestError(f"--replicas {replicas}: only {len(gpus)} GPUs are visible")
        return [f"/gpu:{index}" for index in range(replicas)]
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    return [f"/cpu:{index}" for index in range(replicas)]


class TensorFlowStep:
    """``model.train_step(batch)`` — the step ``fit`` wraps — as a ``tf.function`` with the model's
    ``jit_compile`` (as is when it runs eagerly). TensorFlow keeps the state in its variables; a window
    ends by reading the last step's logs (``numpy()``), computed after its optimizer update."""

    def __init__(self, model: Any, tf: Any) -> None:
        self.model = model
        eager = model.run_eagerly
        self.train = model.train_step if eager else tf.function(model.train_step, jit_compile=model.jit_compile)
        self.logs: dict[str, Any] = {}

    def start(self, x: Any, y: Any) -> None:
        build_training_state(self.model, x, y)
        self.model.reset_metrics()

    def __call__(self, xs: Any, ys: Any, start: int, stop: int) -> None:
        self.logs = self.train((xs[start:stop], ys[start:stop]))

    def wait(self) -> None:
        for value in self.logs.values():
            value.numpy()

    def finish(self) -> tuple[float, float]:
        return logged_figures(self.logs)


class _TensorFlowAdapter(KerasAdapter):
    tf: Any = None
    first_device_predict: Any = None  # a tf.function of the model's call, when replicated
    replicas = 1

    def compiled_step(self) -> Optional[CompiledStep]:
        """Keras 2 (TF 2.15) and several replicas (MirroredStrategy places each batch) train with fit."""
        return TensorFlowStep(self.model, self.tf) if self.replicas == 1 and not self.legacy_keras2 else None

    @property
    def legacy_keras2(self) -> bool:
        return version_tuple(self.versions.get("keras", "3")) < (3,)

    def predict_batch(self, x: Any) -> Any:
        if self.first_device_predict is None:
            return super().predict_batch(x)
        return self.first_device_predict(x).numpy()

    def peak_device_memory_mb(self) -> Optional[float]:
        if self.device != "gpu":
            return None
        return self.tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def _keras_package_version() -> str:
    """TF 2.15's ``tf.keras`` has no ``__version__``; the ``keras`` package it wraps does."""
    import keras

    return str(keras.__version__)
