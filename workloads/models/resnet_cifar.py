"""He et al. 2016's CIFAR ResNet v1 (section 4.2): 6n+2 layers, stages of 16/32/64 filters.

Shortcuts use **option B**: identity, except a 1×1 stride-2 convolution + BatchNorm where a
stage halves the resolution and doubles the filters (the first block of stages 2 and 3).
Parameters at 10 classes: resnet20 272,474, resnet56 855,770.
"""

from __future__ import annotations

import functools
from typing import Any

from workloads.models.base import InputSpec, Model
from workloads.models.blocks import gluon_conv_bn, keras_conv_bn, torch_conv_bn

STAGES = (16, 32, 64)


def blocks_per_stage(depth: int) -> int:
    if (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has 6n+2 layers, not {depth}")
    return (depth - 2) // 6


def _plan(depth: int) -> list[tuple[int, int]]:
    """(filters, stride) of every residual block."""
    n = blocks_per_stage(depth)
    return [(filters, 2 if stage and not block else 1) for stage, filters in enumerate(STAGES) for block in range(n)]


def keras_resnet(keras: Any, spec: InputSpec, depth: int) -> Any:
    layers = keras.layers
    inputs = keras.Input(shape=spec.shape)
    x = keras_conv_bn(keras, inputs, spec, STAGES[0], 3)
    for filters, stride in _plan(depth):
        y = keras_conv_bn(keras, x, spec, filters, 3, stride)
        y = keras_conv_bn(keras, y, spec, filters, 3, relu=False)
        shortcut = keras_conv_bn(keras, x, spec, filters, 1, stride, relu=False) if stride != 1 else x
        x = layers.Activation("relu")(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(spec.num_classes)(x))


def torch_resnet(torch: Any, spec: InputSpec, depth: int) -> Any:
    nn = torch.nn

    class BasicBlock(torch.nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                torch_conv_bn(torch, cin, cout, 3, stride), torch_conv_bn(torch, cout, cout, 3, relu=False)
            )
            self.shortcut = torch_conv_bn(torch, cin, cout, 1, stride, relu=False) if stride != 1 else nn.Identity()

        def forward(self, x: Any) -> Any:
            return torch.relu(self.body(x) + self.shortcut(x))

    modules = [torch_conv_bn(torch, spec.channels, STAGES[0], 3)]
    cin = STAGES[0]
    for filters, stride in _plan(depth):
        modules.append(BasicBlock(cin, filters, stride))
        cin = filters
    modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, spec.num_classes)]
    return nn.Sequential(*modules)


def gluon_resnet(mx: Any, spec: InputSpec, depth: int) -> Any:
    nn = mx.gluon.nn

    class BasicBlock(mx.gluon.HybridBlock):
        def __init__(self, cout: int, stride: int) -> None:
            super().__init__()
            with self.name_scope():
                self.body = nn.HybridSequential()
                self.body.add(gluon_conv_bn(mx, spec, cout, 3, stride), gluon_conv_bn(mx, spec, cout, 3, relu=False))
                self.shortcut = gluon_conv_bn(mx, spec, cout, 1, stride, relu=False) if stride != 1 else None

        def hybrid_forward(self, F: Any, x: Any) -> Any:
            shortcut = x if self.shortcut is None else self.shortcut(x)
            return F.relu(self.body(x) + shortcut)

    net = nn.HybridSequential()
    net.add(gluon_conv_bn(mx, spec, STAGES[0], 3))
    for filters, stride in _plan(depth):
        net.add(BasicBlock(filters, stride))
    net.add(nn.GlobalAvgPool2D(layout=spec.gluon_layout), nn.Dense(spec.num_classes))
    return net


def _model(depth: int) -> Model:
    return Model(
        f"resnet{depth}",
        "image",
        f"CIFAR ResNet-{depth} v1 (He et al. 2016), 16/32/64 filters, BN, option-B shortcuts (seeds 000, 003)",
        keras=functools.partial(keras_resnet, depth=depth),
        torch=functools.partial(torch_resnet, depth=depth),
        gluon=functools.partial(gluon_resnet, depth=depth),
    )


MODELS = (_model(20), _model(56))
