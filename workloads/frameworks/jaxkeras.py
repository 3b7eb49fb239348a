"""JAX through Keras 3 (``KERAS_BACKEND=jax``) and ``model.fit``.

Replicas use Keras 3's ``DataParallel`` distribution: the batch is sharded over N JAX devices and
the variables replicated. Without GPUs, XLA is asked for N host devices, which must happen before
JAX starts. ``gpu_memory``: ``growth`` (the default here) turns JAX's preallocation of 75 % of each
GPU off, so its device memory compares with the other frameworks'; ``all`` keeps JAX's own policy;
a fraction preallocates that share. Both must be set before JAX starts too.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from workloads.errors import UsageError
from workloads.frameworks import OptionValue
from workloads.frameworks.keras_common import KerasAdapter


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
    adapter.versions = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "keras": keras.__version__}
    adapter.device = "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"
    if adapter.device == "gpu":
        adapter.device_bytes = (jax.devices()[0].memory_stats() or {}).get("bytes_limit")
        adapter.notes.append(memory_note)
    adapter.options = dict(options)
    if replicas > 1:
        devices = jax.devices()
        if len(devices) < replicas:
            raise UsageError(f"--replicas {replicas}: only {len(devices)} {adapter.device} devices are visible")
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


class _JaxKerasAdapter(KerasAdapter):
    """Records the jit setting Keras resolved, since the default is Keras's choice."""

    jax: Any = None

    def build(self, model: Any, inputs: Any) -> int:
        params = super().build(model, inputs)
        self.options["jit_compile"] = bool(self.model.jit_compile)
        return params

    def peak_device_memory_mb(self) -> Optional[float]:
        if self.device != "gpu":
            return None
        stats = self.jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
        return None if peak is None else peak / 2**20
