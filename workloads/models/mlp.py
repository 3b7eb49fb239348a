"""Seed 000's MLP: Flatten → Dense 128 ReLU → Dense 10 (101,770 parameters on 28×28×1)."""

from __future__ import annotations

import math
from typing import Any

from workloads.models.base import InputSpec, Model


def keras_mlp(keras: Any, spec: InputSpec) -> Any:
    layers = keras.layers
    inputs = keras.Input(shape=spec.shape)
    x = layers.Flatten()(inputs)
    x = layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(spec.num_classes)(x))


def torch_mlp(torch: Any, spec: InputSpec) -> Any:
    nn = torch.nn
    return nn.Sequential(
        nn.Flatten(), nn.Linear(math.prod(spec.shape), 128), nn.ReLU(), nn.Linear(128, spec.num_classes)
    )


def gluon_mlp(mx: Any, spec: InputSpec) -> Any:
    nn = mx.gluon.nn
    net = nn.HybridSequential()
    net.add(nn.Flatten(), nn.Dense(128, activation="relu"), nn.Dense(spec.num_classes))
    return net


MODELS = (
    Model(
        "mlp",
        "image",
        "Flatten → Dense128 ReLU → Dense10 (seed 000)",
        keras=keras_mlp,
        torch=torch_mlp,
        gluon=gluon_mlp,
    ),
)
