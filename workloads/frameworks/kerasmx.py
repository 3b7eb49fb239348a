"""Keras 2.2.4 on the MXNet backend (keras-mxnet), ``channels_first`` as its authors advise."""

from __future__ import annotations

import os
import warnings

from workloads.frameworks.keras_common import KerasAdapter


def create(options: dict[str, bool | None], lr: float, seed: int) -> KerasAdapter:
    os.environ["KERAS_BACKEND"] = "mxnet"
    import keras
    import mxnet as mx

    if keras.backend.backend() != "mxnet":
        raise RuntimeError(f"keras uses the {keras.backend.backend()} backend, not mxnet")
    # keras shows every DeprecationWarning ("always"); mxnet then triggers one from scipy on
    # every batch, which floods the log and slows the steps being timed.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mxnet\.")
    keras.backend.set_image_data_format("channels_first")
    mx.random.seed(seed)
    adapter = KerasAdapter(keras, keras.__version__, lr=lr, seed=seed, channels_first=True)
    adapter.versions = {"keras": keras.__version__, "mxnet": mx.__version__}
    adapter.device = "gpu" if mx.context.num_gpus() > 0 else "cpu"
    adapter.notes.append("image_data_format channels_first; images fed as (N, 1, 28, 28)")
    return adapter
