"""MXNet Gluon: ``HybridSequential``, ``gluon.Trainer`` and an autograd loop, NCHW.

Batches are slices of a per-epoch permutation of the in-memory NumPy arrays, as for
PyTorch. The softmax is folded into ``SoftmaxCrossEntropyLoss`` (same parameters).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workloads.timing import Recorder


def create(options: dict[str, bool | None], lr: float, seed: int) -> GluonAdapter:
    import mxnet as mx

    mx.random.seed(seed)
    return GluonAdapter(mx, hybridize=bool(options["hybridize"]), lr=lr, seed=seed)


class GluonAdapter:
    def __init__(self, mx: Any, *, hybridize: bool, lr: float, seed: int) -> None:
        self.mx = mx
        self.lr = lr
        self.hybridize = hybridize
        self.rng = np.random.default_rng(seed)
        gpu = mx.context.num_gpus() > 0
        self.ctx = mx.gpu(0) if gpu else mx.cpu()
        self.device = "gpu" if gpu else "cpu"
        self.versions = {"mxnet": mx.__version__}
        self.options: dict[str, Any] = {"hybridize": hybridize}
        self.notes = [
            "hand-written autograd loop over NumPy batches (no DataLoader)",
            "softmax folded into SoftmaxCrossEntropyLoss; Xavier (Glorot) initialisation",
        ]
        self.net: Any = None

    def build(self, model: str) -> int:
        mx = self.mx
        nn = mx.gluon.nn
        net = nn.HybridSequential()
        if model == "mlp":
            net.add(nn.Flatten(), nn.Dense(128, activation="relu"), nn.Dense(10))
        else:
            net.add(
                nn.Conv2D(64, kernel_size=3, activation="relu"),
                nn.Conv2D(32, kernel_size=3, activation="relu"),
                nn.Flatten(),
                nn.Dense(10),
            )
        net.initialize(mx.init.Xavier(), ctx=self.ctx)
        net(mx.nd.zeros((1, 1, 28, 28), ctx=self.ctx))  # ends deferred init: shapes to count
        if self.hybridize:
            net.hybridize(static_alloc=True, static_shape=True)
        self.net = net
        self.trainer = mx.gluon.Trainer(net.collect_params(), "adam", {"learning_rate": self.lr})
        self.loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
        return sum(int(np.prod(p.shape)) for p in net.collect_params().values())

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, recorder: Recorder) -> None:
        mx = self.mx
        x = x.reshape(len(x), 1, 28, 28)
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
                loss.backward()
                self.trainer.step(len(label))
                batch_loss, hits = loss.sum(), (output.argmax(axis=1) == label).sum()
                # MXNet runs asynchronously: wait for the update too, not just the loss.
                mx.nd.waitall()
                total_loss += batch_loss.asscalar()
                correct += hits.asscalar()
                recorder.step(len(label))
            recorder.end_epoch(total_loss / len(xs), correct / len(xs))

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        mx = self.mx
        x = x.reshape(len(x), 1, 28, 28)
        return np.concatenate(
            [
                self.net(mx.nd.array(x[start : start + batch_size], ctx=self.ctx)).asnumpy()
                for start in range(0, len(x), batch_size)
            ]
        )
