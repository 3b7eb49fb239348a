"""VGG-16 with BatchNorm, adapted to 32×32 inputs (seed 003, CIFAR-10).

The 13 3×3 convolutions of configuration D, each followed by BatchNorm and ReLU, and five
2×2 max-pools leave a 1×1×512 map; the classifier is 512 → 512 → 512 → classes (ReLU, no
dropout). 15,249,354 parameters at 10 classes.
"""

from __future__ import annotations

from typing import Any

from workloads.models.base import InputSpec, Model
from workloads.models.blocks import gluon_conv_bn, keras_conv_bn, torch_conv_bn

POOL = 0
CONFIG_D = (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL)
HIDDEN = 512


def keras_vgg16(keras: Any, spec: InputSpec) -> Any:
    layers = keras.layers
    inputs = x = keras.Input(shape=spec.shape)
    for filters in CONFIG_D:
        x = layers.MaxPooling2D(2, strides=2)(x) if filters == POOL else keras_conv_bn(keras, x, spec, filters, 3)
    x = layers.Flatten()(x)
    x = layers.Dense(HIDDEN, activation="relu")(x)
    x = layers.Dense(HIDDEN, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(spec.num_classes)(x))


def torch_vgg16(torch: Any, spec: InputSpec) -> Any:
    nn = torch.nn
    modules, cin = [], spec.channels
    for filters in CONFIG_D:
        if filters == POOL:
            modules.append(nn.MaxPool2d(2, 2))
        else:
            modules.append(torch_conv_bn(torch, cin, filters, 3))
            cin = filters
    height, width = (side // 32 for side in spec.spatial)
    modules += [
        nn.Flatten(),
        nn.Linear(cin * height * width, HIDDEN),
        nn.ReLU(inplace=True),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(inplace=True),
        nn.Linear(HIDDEN, spec.num_classes),
    ]
    return nn.Sequential(*modules)


def gluon_vgg16(mx: Any, spec: InputSpec) -> Any:
    nn = mx.gluon.nn
    net = nn.HybridSequential()
    for filters in CONFIG_D:
        net.add(
            nn.MaxPool2D(2, 2, layout=spec.gluon_layout) if filters == POOL else gluon_conv_bn(mx, spec, filters, 3)
        )
    net.add(
        nn.Flatten(),
        nn.Dense(HIDDEN, activation="relu"),
        nn.Dense(HIDDEN, activation="relu"),
        nn.Dense(spec.num_classes),
    )
    return net


MODELS = (
    Model(
        "vgg16",
        "image",
        "VGG-16 (configuration D) with BatchNorm for 32×32 inputs, classifier 512-512 (seed 003)",
        keras=keras_vgg16,
        torch=torch_vgg16,
        gluon=gluon_vgg16,
    ),
)
