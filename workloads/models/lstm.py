"""A 2-layer LSTM sequence classifier (seed 004's "lstm"): (T, F) → LSTM 128 → LSTM 128 → last step → Dense.

On the ``synthetic_seq`` data (T=64 steps of F=32 features, 10 classes) it has 215,306
trainable parameters. Keras's LSTM has one bias per gate; PyTorch and Gluon have two (input
and hidden) that only ever appear summed, so their hidden-to-hidden bias is fixed at zero and
not trained: the same function with the same trainable parameters.
"""

from __future__ import annotations

from typing import Any

from workloads.models.base import InputSpec, Model

HIDDEN = 128
LAYERS = 2


def keras_lstm(keras: Any, spec: InputSpec) -> Any:
    layers = keras.layers
    inputs = keras.Input(shape=spec.shape)
    x = layers.LSTM(HIDDEN, return_sequences=True)(inputs)
    x = layers.LSTM(HIDDEN)(x)
    return keras.Model(inputs, layers.Dense(spec.num_classes)(x))


def torch_lstm(torch: Any, spec: InputSpec) -> Any:
    nn = torch.nn

    class LSTMClassifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(spec.shape[-1], HIDDEN, num_layers=LAYERS, batch_first=True)
            for layer in range(LAYERS):
                bias = getattr(self.lstm, f"bias_hh_l{layer}")
                nn.init.zeros_(bias)
                bias.requires_grad_(False)
            self.head = nn.Linear(HIDDEN, spec.num_classes)

        def forward(self, x: Any) -> Any:
            outputs, _ = self.lstm(x)
            return self.head(outputs[:, -1])

    return LSTMClassifier()


def gluon_lstm(mx: Any, spec: InputSpec) -> Any:
    class LSTMClassifier(mx.gluon.HybridBlock):
        def __init__(self) -> None:
            super().__init__()
            with self.name_scope():
                self.lstm = mx.gluon.rnn.LSTM(HIDDEN, num_layers=LAYERS, layout="NTC", input_size=spec.shape[-1])
                self.head = mx.gluon.nn.Dense(spec.num_classes)
            for param in self.lstm.collect_params(".*h2h_bias").values():
                param.grad_req = "null"  # initialised to zero by the LSTM's own bias initialiser

        def hybrid_forward(self, F: Any, x: Any) -> Any:
            last = F.slice_axis(self.lstm(x), axis=1, begin=-1, end=None)
            return self.head(F.reshape(last, shape=(0, -1)))

    return LSTMClassifier()


MODELS = (
    Model(
        "lstm",
        "sequence",
        "2-layer LSTM (128 units) classifier on the last step; (64, 32) → 10 on synthetic_seq (seed 004)",
        keras=keras_lstm,
        torch=torch_lstm,
        gluon=gluon_lstm,
    ),
)
