"""JAX through Keras 3 (``KERAS_BACKEND=jax``) and ``model.fit``."""

from __future__ import annotations

import os

from workloads.frameworks.keras_common import KerasAdapter


def create(options: dict[str, bool | None], lr: float, seed: int) -> KerasAdapter:
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import jaxlib
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()} backend, not jax")
    jit_compile = options["jit_compile"]
    compile_kwargs = {} if jit_compile is None else {"jit_compile": jit_compile}
    adapter = _JaxKerasAdapter(keras, keras.__version__, lr=lr, seed=seed, compile_kwargs=compile_kwargs)
    adapter.versions = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "keras": keras.__version__}
    adapter.device = "gpu" if jax.default_backend() in ("gpu", "cuda", "rocm") else "cpu"
    adapter.options = {"jit_compile": jit_compile}
    if jit_compile is None:
        adapter.notes.append("jit_compile not given: Keras 3's default ('auto') was used")
    return adapter


class _JaxKerasAdapter(KerasAdapter):
    """Records the jit setting Keras resolved, since the default is Keras's choice."""

    def build(self, model: str) -> int:
        params = super().build(model)
        self.options["jit_compile"] = bool(self.model.jit_compile)
        return params
