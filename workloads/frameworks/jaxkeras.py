"""JAX through Keras 3 (``KERAS_BACKEND=jax``): Keras's own ``train_step`` under ``jax.jit`` over
device-resident batches (``input=device``), or ``model.fit`` (``input=host``, several replicas).

Replicas use Keras 3's ``DataParallel`` distribution: the batch is sharded over N JAX devices and
the variables replicated. Without GPUs, XLA is asked for N host devices, which must happen before
JAX starts. ``gpu_memory``: ``growth`` (the default here) turns JAX's preallocation of 75 % of each
GPU off, so its device memory compares with the other frameworks'; ``all`` keeps JAX's own policy;
a fraction preallocates that share. Both must be set before JAX starts too.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from workloads.errors import RequestError
from workloads.frameworks import OptionValue
from workloads.frameworks.keras_common import CompiledStep, KerasAdapter, build_training_state, logged_figures


def create(options: dict[str, OptionValue], lr: float, seed: int, optimizer: str, replicas: int = 1) -> KerasAdapter:
    os.environ["KERAS_BACKEND"] = "jax"
    memory_note = _memory_policy(str(options["gpu_memory"]))
    if replicas > 1:
        flag = f"--xla_force_host_platform_device_count={replicas}"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
    import jax
    import jaxlib
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()} backend, not jax")
    jit_compile = options["jit_compile"]
    compile_kwargs: dict[str, Any] = {} if jit_compile is None else {"jit_compile": jit_compile}
    if options["run_eagerly"]:
        compile_kwargs["run_eagerly"] = True
    adapter = _JaxKerasAdapter(
        keras,
        keras.__version__,
        lr=lr,
        seed=seed,
        optimizer=optimizer,
        channels_first=options["data_format"] == "channels_first",
        precision=str(options["precision"]),
        compile_kwargs=compile_kwargs,
    )
    adapter.jax = jax
    adapter.replicas = replicas
    adapter.versions = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "keras": keras.__version__}
    adapter.device = "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"
    if adapter.device == "gpu":
        adapter.device_bytes = (jax.devices()[0].memory_stats() or {}).get("bytes_limit")
        adapter.notes.append(memory_note)
    adapter.options = dict(options)
    if replicas > 1:
        devices = jax.devices()
        if len(devices) < replicas:
            raise RequestError(f"--replicas {replicas}: only {len(devices)} {adapter.device} devices are visible")
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices[:replicas]))
        adapter.notes.append(f"keras.distribution.DataParallel over {replicas} JAX {adapter.device} devices")
    if jit_compile is None:
        adapter.notes.append("jit_compile not given: Keras 3's default ('auto') was used")
    return adapter


def _memory_policy(policy: str) -> str:
    """Set JAX's allocator environment for ``policy``; say what it means."""
    if policy == "growth":
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        return "GPU memory: growth (XLA_PYTHON_CLIENT_PREALLOCATE=false: allocated as needed)"
    if policy == "all":
        return "GPU memory: all (JAX's own policy: 75% of each GPU preallocated)"
    os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = policy
    return f"GPU memory: {float(policy):.0%} of each GPU preallocated (XLA_PYTHON_CLIENT_MEM_FRACTION)"


class JaxStep:
    """``model.train_step(state, batch)`` — Keras's stateless JAX step, the one ``fit`` jits — under
    ``jax.jit`` with the state donated (as ``fit`` does), the batch cut from the resident split inside
    the same compiled function (``dynamic_slice`` at a traced start: one compilation per batch size, where
    slicing with Python ints would compile once per position); called as is when Keras runs eagerly or
    without jit. The state lives here during an epoch and goes back to the model's variables at its end,
    as ``fit``'s own ``state_sync`` does; a window ends with ``jax.block_until_ready`` on the state."""

    def __init__(self, model: Any, jax: Any) -> None:
        self.model, self.jax = model, jax
        self.compiled = model.jit_compile and not model.run_eagerly
        self.train = jax.jit(self._sliced_step, donate_argnums=0, static_argnums=4)
        self.state: Any = None
        self.logs: dict[str, Any] = {}

    def _sliced_step(self, state: Any, xs: Any, ys: Any, start: Any, size: int) -> Any:
        cut = self.jax.lax.dynamic_slice_in_dim
        return self.model.train_step(state, (cut(xs, start, size), cut(ys, start, size)))

    def _variables(self) -> tuple[list[Any], ...]:
        model = self.model
        return (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )

    def start(self, x: Any, y: Any) -> None:
        build_training_state(self.model, x, y)
        self.model.reset_metrics()
        self.state = tuple([variable.value for variable in group] for group in self._variables())

    def __call__(self, xs: Any, ys: Any, start: int, stop: int) -> None:
        if self.compiled:
            self.logs, self.state = self.train(self.state, xs, ys, start, stop - start)
        else:
            self.logs, self.state = self.model.train_step(self.state, (xs[start:stop], ys[start:stop]))

    def wait(self) -> None:
        self.jax.block_until_ready(self.state)

    def finish(self) -> tuple[float, float]:
        for group, values in zip(self._variables(), self.state):
            for variable, value in zip(group, values):
                variable.assign(value)
        return logged_figures(self.logs)


class _JaxKerasAdapter(KerasAdapter):
    """Records the jit setting Keras resolved, since the default is Keras's choice."""

    jax: Any = None
    replicas = 1

    def build(self, model: Any, inputs: Any) -> int:
        params = super().build(model, inputs)
        self.options["jit_compile"] = bool(self.model.jit_compile)
        return params

    def compiled_step(self) -> Optional[CompiledStep]:
        """Several replicas train with fit: Keras's DataParallel distribution shards each batch."""
        return JaxStep(self.model, self.jax) if self.replicas == 1 else None

    def peak_device_memory_mb(self) -> Optional[float]:
        if self.device != "gpu":
            return None
        stats = self.jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
        return None if peak is None else peak / 2**20
