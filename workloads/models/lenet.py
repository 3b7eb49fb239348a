"""Seed 002's LeNet: C(6,5,1) → AvgPool(2,2) → C(16,3,1) → AvgPool(2,2) → FC120 → FC84 → FC10.

Valid convolutions and ReLU after every layer but the last; 60,170 parameters on 28×28×1.
"""

from __future__ import annotations

from typing import Any

from workloads.models.base import InputSpec, Model


def keras_lenet(keras: Any, spec: InputSpec) -> Any:
    layers = keras.layers
    inputs = keras.Input(shape=spec.shape)
    x = layers.Conv2D(6, 5, activation="relu")(inputs)
    x = layers.AveragePooling2D(2, strides=2)(x)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    x = layers.AveragePooling2D(2, strides=2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(120, activation="relu")(x)
    x = layers.Dense(84, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(spec.num_classes)(x))


def torch_lenet(torch: Any, spec: InputSpec) -> Any:
    nn = torch.nn
    height, width = (((side - 4) // 2 - 2) // 2 for side in spec.spatial)
    return nn.Sequential(
        nn.Conv2d(spec.channels, 6, 5),
        nn.ReLU(),
        nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 3),
        nn.ReLU(),
        nn.AvgPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(16 * height * width, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, spec.num_classes),
    )


def gluon_lenet(mx: Any, spec: InputSpec) -> Any:
    nn = mx.gluon.nn
    layout = spec.gluon_layout
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(6, 5, activation="relu", layout=layout),
        nn.AvgPool2D(2, 2, layout=layout),
        nn.Conv2D(16, 3, activation="relu", layout=layout),
        nn.AvgPool2D(2, 2, layout=layout),
        nn.Flatten(),
        nn.Dense(120, activation="relu"),
        nn.Dense(84, activation="relu"),
        nn.Dense(spec.num_classes),
    )
    return net


MODELS = (
    Model(
        "lenet",
        "image",
        "LeNet C6k5 → AvgPool → C16k3 → AvgPool → FC120 → FC84 → FC10, ReLU (seed 002)",
        keras=keras_lenet,
        torch=torch_lenet,
        gluon=gluon_lenet,
    ),
)
