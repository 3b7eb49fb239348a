"""MXNet Gluon: the model's ``HybridBlock``, ``gluon.Trainer`` and an autograd loop.

Batches are slices of a per-epoch permutation of the in-memory NumPy arrays, as for
PyTorch. The softmax is folded into ``SoftmaxCrossEntropyLoss`` (same parameters).
float16 is MXNet's AMP (GPU only); ``hybridize`` uses ``static_alloc``/``static_shape``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from workloads.frameworks import OptionValue
from workloads.timing import Recorder

RMSPROP = {"gamma1": 0.9, "epsilon": 1e-7}  # Keras's RMSprop defaults, set in every framework


def create(options: dict[str, OptionValue], lr: float, seed: int, optimizer: str) -> GluonAdapter:
    import mxnet as mx

    mx.random.seed(seed)
    return GluonAdapter(mx, options, lr=lr, seed=seed, optimizer=optimizer)


class GluonAdapter:
    def __init__(self, mx: Any, options: dict[str, OptionValue], *, lr: float, seed: int, optimizer: str) -> None:
        self.mx = mx
        self.lr = lr
        self.optimizer_name = optimizer
        self.hybridize = bool(options["hybridize"])
        self.channels_first = options["data_format"] == "channels_first"
        self.rng = np.random.default_rng(seed)
        gpu = mx.context.num_gpus() > 0
        self.ctx = mx.gpu(0) if gpu else mx.cpu()
        self.device = "gpu" if gpu else "cpu"
        self.versions = {"mxnet": mx.__version__}
        self.options: dict[str, Any] = dict(options)
        self.notes = [
            "hand-written autograd loop over NumPy batches (no DataLoader)",
            "softmax folded into SoftmaxCrossEntropyLoss; Xavier (Glorot) initialisation",
        ]
        self.amp: Any = None
        if options["precision"] == "fp16":
            from mxnet.contrib import amp

            amp.init()  # before the network is built, so its operators are patched
            self.amp = amp
            self.notes.append("MXNet AMP (float16) with dynamic loss scaling")
        self.net: Any = None

    def build(self, model: Any, inputs: Any) -> int:
        mx = self.mx
        net = model.gluon(mx, inputs)
        net.initialize(mx.init.Xavier(), ctx=self.ctx)
        net(mx.nd.zeros((1, *inputs.shape), ctx=self.ctx))  # ends deferred init: shapes to count
        if self.hybridize:
            net.hybridize(static_alloc=True, static_shape=True)
        self.net = net
        params = {"learning_rate": self.lr, **(RMSPROP if self.optimizer_name == "rmsprop" else {})}
        self.trainer = mx.gluon.Trainer(net.collect_params(), self.optimizer_name, params)
        if self.amp is not None:
            self.amp.init_trainer(self.trainer)
        self.loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        trainable = [p for p in net.collect_params().values() if p.grad_req != "null"]
        return sum(int(np.prod(p.shape)) for p in trainable)

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, recorder: Recorder) -> None:
        mx = self.mx
        labels = y.astype(np.float32)
        for _ in range(epochs):
            recorder.start_epoch()
            order = self.rng.permutation(len(x))
            xs, ys = x[order], labels[order]
            total_loss, correct = 0.0, 0.0
            for start in range(0, len(xs), batch_size):
                data = mx.nd.array(xs[start : start + batch_size], ctx=self.ctx)
                label = mx.nd.array(ys[start : start + batch_size], ctx=self.ctx)
                with mx.autograd.record():
                    output = self.net(data)
                    loss = self.loss_fn(output, label)
                if self.amp is None:
                    loss.backward()
                else:
                    with self.amp.scale_loss(loss, self.trainer) as scaled:
                        mx.autograd.backward(scaled)
                self.trainer.step(len(label))
                batch_loss, hits = loss.sum(), (output.argmax(axis=1) == label).sum()
                # MXNet runs asynchronously: wait for the update too, not just the loss.
                mx.nd.waitall()
                total_loss += batch_loss.asscalar()
                correct += hits.asscalar()
                recorder.step(len(label))
            recorder.end_epoch(total_loss / len(xs), correct / len(xs))

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        return self.net(self.mx.nd.array(x, ctx=self.ctx)).asnumpy()

    def peak_device_memory_mb(self) -> Optional[float]:
        return None  # MXNet 1.x reports free/total device memory, not a peak
