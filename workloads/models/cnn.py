"""Seed 000's CNN: Conv64 k3 ReLU → Conv32 k3 ReLU → Flatten → Dense 10 (203,434 on 28×28×1)."""

from __future__ import annotations

from typing import Any

from workloads.models.base import InputSpec, Model


def keras_cnn(keras: Any, spec: InputSpec) -> Any:
    layers = keras.layers
    inputs = keras.Input(shape=spec.shape)
    x = layers.Conv2D(64, 3, activation="relu")(inputs)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(spec.num_classes)(x))


def torch_cnn(torch: Any, spec: InputSpec) -> Any:
    nn = torch.nn
    height, width = spec.spatial
    return nn.Sequential(
        nn.Conv2d(spec.channels, 64, 3),
        nn.ReLU(),
        nn.Conv2d(64, 32, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * (height - 4) * (width - 4), spec.num_classes),
    )


def gluon_cnn(mx: Any, spec: InputSpec) -> Any:
    nn = mx.gluon.nn
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(64, 3, activation="relu", layout=spec.gluon_layout),
        nn.Conv2D(32, 3, activation="relu", layout=spec.gluon_layout),
        nn.Flatten(),
        nn.Dense(spec.num_classes),
    )
    return net


MODELS = (
    Model(
        "cnn",
        "image",
        "Conv64 k3 ReLU → Conv32 k3 ReLU → Flatten → Dense10 (seed 000)",
        keras=keras_cnn,
        torch=torch_cnn,
        gluon=gluon_cnn,
    ),
)
