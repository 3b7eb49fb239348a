"""Conv + BatchNorm (+ ReLU) in each API, with the same BatchNorm settings everywhere.

BatchNorm uses PyTorch's and Gluon's defaults (momentum 0.9 in Keras terms, epsilon 1e-5);
Keras's own defaults (0.99, 1e-3) would make the "same" network train differently.
Convolutions followed by BatchNorm have no bias, as in the papers.
"""

from __future__ import annotations

from typing import Any

from workloads.models.base import InputSpec

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def keras_conv_bn(
    keras: Any, x: Any, spec: InputSpec, filters: int, kernel: int, stride: int = 1, relu: bool = True
) -> Any:
    layers = keras.layers
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(axis=spec.channel_axis, momentum=BN_MOMENTUM, epsilon=BN_EPSILON)(x)
    return layers.Activation("relu")(x) if relu else x


def torch_conv_bn(torch: Any, cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> Any:
    nn = torch.nn
    modules = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout, momentum=1 - BN_MOMENTUM, eps=BN_EPSILON),
    ]
    if relu:
        modules.append(nn.ReLU(inplace=True))
    return nn.Sequential(*modules)


def gluon_conv_bn(mx: Any, spec: InputSpec, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> Any:
    nn = mx.gluon.nn
    block = nn.HybridSequential()
    block.add(
        nn.Conv2D(cout, kernel, strides=stride, padding=kernel // 2, use_bias=False, layout=spec.gluon_layout),
        nn.BatchNorm(axis=1 if spec.channels_first else 3, momentum=BN_MOMENTUM, epsilon=BN_EPSILON),
    )
    if relu:
        block.add(nn.Activation("relu"))
    return block
