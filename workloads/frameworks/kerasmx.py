"""Keras 2.2.4 on the MXNet backend (keras-mxnet), ``channels_first`` by default as its authors advise.

Replicas are keras-mxnet's ``multi_gpu_model``, which sets the model's MXNet contexts (one per
GPU) before compiling; without GPUs the same contexts are CPU ones.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from workloads.errors import RequestError
from workloads.frameworks import OptionValue
from workloads.frameworks.keras_common import KerasAdapter


def create(options: dict[str, OptionValue], lr: float, seed: int, optimizer: str, replicas: int = 1) -> KerasAdapter:
    os.environ["KERAS_BACKEND"] = "mxnet"
    import keras
    import mxnet as mx

    if keras.backend.backend() != "mxnet":
        raise RuntimeError(f"keras uses the {keras.backend.backend()} backend, not mxnet")
    # keras shows every DeprecationWarning ("always"); mxnet then triggers one from scipy on
    # every batch, which floods the log and slows the steps being timed.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mxnet\.")
    mx.random.seed(seed)
    data_format = str(options["data_format"])
    adapter = KerasAdapter(
        keras, keras.__version__, lr=lr, seed=seed, optimizer=optimizer, channels_first=data_format == "channels_first"
    )
    adapter.versions = {"keras": keras.__version__, "mxnet": mx.__version__}
    adapter.device = "gpu" if mx.context.num_gpus() > 0 else "cpu"
    adapter.device_bytes = int(mx.context.gpu_memory_info(0)[1]) if adapter.device == "gpu" else None
    adapter.options = dict(options)
    adapter.notes.append(f"image_data_format {data_format}")
    if replicas > 1:
        adapter.replicate = _replicator(keras, mx, replicas)
        adapter.notes.append(f"keras.utils.multi_gpu_model over {replicas} {adapter.device} contexts")
    return adapter


def _replicator(keras: Any, mx: Any, replicas: int) -> Any:
    gpus = mx.context.num_gpus()
    if gpus and gpus < replicas:
        raise RequestError(f"--replicas {replicas}: only {gpus} GPUs are visible")

    def replicate(model: Any) -> Any:
        if gpus:
            return keras.utils.multi_gpu_model(model, gpus=replicas)
        model.set_mxnet_context([f"cpu({index})" for index in range(replicas)])
        return model

    return replicate
