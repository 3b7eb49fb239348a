"""A model plugin: seed 004's "add your own model" MLP (Keras's mnist_mlp example).

Flatten → Dense 512 ReLU → Dropout 0.2 → Dense 512 ReLU → Dropout 0.2 → Dense 10:
669,706 parameters on 28×28×1. Name this folder in a spec (``plugins: [../examples/plugins]``)
and use ``model: mnist_mlp`` in a workload; ``plan`` lists it and every cell mounts the
folder read-only. Builders import nothing at module level: ``plan`` learns the model's name by importing this
file in a hardened container of each framework's image, where only that framework is installed.
"""

import math

from workloads.models import Model, register


def keras_mnist_mlp(keras, spec):
    layers = keras.layers
    inputs = keras.Input(shape=spec.shape)
    x = layers.Flatten()(inputs)
    for _ in range(2):
        x = layers.Dense(512, activation="relu")(x)
        x = layers.Dropout(0.2)(x)
    return keras.Model(inputs, layers.Dense(spec.num_classes)(x))


def torch_mnist_mlp(torch, spec):
    nn = torch.nn
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(spec.shape), 512),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(512, spec.num_classes),
    )


def gluon_mnist_mlp(mx, spec):
    nn = mx.gluon.nn
    net = nn.HybridSequential()
    net.add(nn.Flatten())
    for _ in range(2):
        net.add(nn.Dense(512, activation="relu"), nn.Dropout(0.2))
    net.add(nn.Dense(spec.num_classes))
    return net


register(
    Model(
        "mnist_mlp",
        "image",
        "Keras mnist_mlp: Dense512-Dropout-Dense512-Dropout-Dense10 (seed 004's plugin example)",
        keras=keras_mnist_mlp,
        torch=torch_mnist_mlp,
        gluon=gluon_mnist_mlp,
    )
)
