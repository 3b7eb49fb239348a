"""ResNet-50 v1 (He et al. 2015): bottleneck blocks 3-4-6-3, the stride on the first 1×1 conv.

Projection shortcuts (1×1 conv + BatchNorm) open each stage. 25,557,032 parameters at 1000
classes (the "25.6 M" of the paper; torchvision and Gluon's model zoo count the same).
"""

from __future__ import annotations

from typing import Any

from workloads.models.base import InputSpec, Model
from workloads.models.blocks import gluon_conv_bn, keras_conv_bn, torch_conv_bn

EXPANSION = 4
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


def _plan() -> list[tuple[int, int, bool]]:
    """(width, stride, projection shortcut) of every bottleneck block."""
    return [
        (width, stride if block == 0 else 1, block == 0) for width, blocks, stride in STAGES for block in range(blocks)
    ]


def keras_resnet50(keras: Any, spec: InputSpec) -> Any:
    layers = keras.layers
    inputs = keras.Input(shape=spec.shape)
    x = keras_conv_bn(keras, inputs, spec, 64, 7, 2)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for width, stride, project in _plan():
        y = keras_conv_bn(keras, x, spec, width, 1, stride)
        y = keras_conv_bn(keras, y, spec, width, 3)
        y = keras_conv_bn(keras, y, spec, width * EXPANSION, 1, relu=False)
        shortcut = keras_conv_bn(keras, x, spec, width * EXPANSION, 1, stride, relu=False) if project else x
        x = layers.Activation("relu")(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(spec.num_classes)(x))


def torch_resnet50(torch: Any, spec: InputSpec) -> Any:
    nn = torch.nn

    class Bottleneck(torch.nn.Module):
        def __init__(self, cin: int, width: int, stride: int, project: bool) -> None:
            super().__init__()
            cout = width * EXPANSION
            self.body = nn.Sequential(
                torch_conv_bn(torch, cin, width, 1, stride),
                torch_conv_bn(torch, width, width, 3),
                torch_conv_bn(torch, width, cout, 1, relu=False),
            )
            self.shortcut = torch_conv_bn(torch, cin, cout, 1, stride, relu=False) if project else nn.Identity()

        def forward(self, x: Any) -> Any:
            return torch.relu(self.body(x) + self.shortcut(x))

    modules = [torch_conv_bn(torch, spec.channels, 64, 7, 2), nn.MaxPool2d(3, 2, padding=1)]
    cin = 64
    for width, stride, project in _plan():
        modules.append(Bottleneck(cin, width, stride, project))
        cin = width * EXPANSION
    modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, spec.num_classes)]
    return nn.Sequential(*modules)


def gluon_resnet50(mx: Any, spec: InputSpec) -> Any:
    nn = mx.gluon.nn

    class Bottleneck(mx.gluon.HybridBlock):
        def __init__(self, width: int, stride: int, project: bool) -> None:
            super().__init__()
            cout = width * EXPANSION
            with self.name_scope():
                self.body = nn.HybridSequential()
                self.body.add(
                    gluon_conv_bn(mx, spec, width, 1, stride),
                    gluon_conv_bn(mx, spec, width, 3),
                    gluon_conv_bn(mx, spec, cout, 1, relu=False),
                )
                self.shortcut = gluon_conv_bn(mx, spec, cout, 1, stride, relu=False) if project else None

        def hybrid_forward(self, F: Any, x: Any) -> Any:
            shortcut = x if self.shortcut is None else self.shortcut(x)
            return F.relu(self.body(x) + shortcut)

    net = nn.HybridSequential()
    net.add(gluon_conv_bn(mx, spec, 64, 7, 2), nn.MaxPool2D(3, 2, padding=1, layout=spec.gluon_layout))
    for width, stride, project in _plan():
        net.add(Bottleneck(width, stride, project))
    net.add(nn.GlobalAvgPool2D(layout=spec.gluon_layout), nn.Dense(spec.num_classes))
    return net


MODELS = (
    Model(
        "resnet50",
        "image",
        "ResNet-50 v1, bottlenecks 3-4-6-3, 25.6 M parameters at 1000 classes (seeds 000, 004)",
        keras=keras_resnet50,
        torch=torch_resnet50,
        gluon=gluon_resnet50,
    ),
)
