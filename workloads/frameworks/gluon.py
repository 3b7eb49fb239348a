"""MXNet Gluon: the model's ``HybridBlock``, ``gluon.Trainer`` and an autograd loop.

Batches are slices of a per-epoch permutation of the in-memory NumPy arrays, as for
PyTorch. The softmax is folded into ``SoftmaxCrossEntropyLoss`` (same parameters).
float16 is MXNet's AMP (GPU only); ``hybridize`` uses ``static_alloc``/``static_shape``.
Replicas are Gluon's own data parallelism: the parameters live on a list of contexts, each
global batch is split over them, and the trainer's kvstore (``device`` on GPUs) sums gradients.
With one replica that list holds one context and the loop is the same.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from workloads import replicas as data_parallel
from workloads.errors import UsageError
from workloads.frameworks import OptionValue
from workloads.timing import Recorder

RMSPROP = {"gamma1": 0.9, "epsilon": 1e-7}  # Keras's RMSprop defaults, set in every framework


def create(options: dict[str, OptionValue], lr: float, seed: int, optimizer: str, replicas: int = 1) -> GluonAdapter:
    import mxnet as mx

    mx.random.seed(seed)
    return GluonAdapter(mx, options, lr=lr, seed=seed, optimizer=optimizer, replicas=replicas)


class GluonAdapter:
    def __init__(
        self, mx: Any, options: dict[str, OptionValue], *, lr: float, seed: int, optimizer: str, replicas: int = 1
    ) -> None:
        self.mx = mx
        self.lr = lr
        self.optimizer_name = optimizer
        self.hybridize = bool(options["hybridize"])
        self.channels_first = options["data_format"] == "channels_first"
        self.rng = np.random.default_rng(seed)
        gpus = mx.context.num_gpus()
        if gpus and gpus < replicas:
            raise UsageError(f"--replicas {replicas}: only {gpus} GPUs are visible")
        self.contexts = [mx.gpu(i) if gpus else mx.cpu(i) for i in range(replicas)]
        self.ctx = self.contexts[0]
        self.device = "gpu" if gpus else "cpu"
        self.kvstore = "device" if gpus else "local"
        self.versions = {"mxnet": mx.__version__}
        self.options: dict[str, Any] = dict(options)
        self.notes = [
            "hand-written autograd loop over NumPy batches (no DataLoader)",
            "softmax folded into SoftmaxCrossEntropyLoss; Xavier (Glorot) initialisation",
        ]
        if replicas > 1:
            self.notes.append(f"Gluon data parallelism over {self.contexts}, kvstore {self.kvstore}")
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
        net.initialize(mx.init.Xavier(), ctx=self.contexts)
        net(mx.nd.zeros((1, *inputs.shape), ctx=self.ctx))  # ends deferred init: shapes to count
        if self.hybridize:
            net.hybridize(static_alloc=True, static_shape=True)
        self.net = net
        params = {"learning_rate": self.lr, **(RMSPROP if self.optimizer_name == "rmsprop" else {})}
        self.trainer = mx.gluon.Trainer(net.collect_params(), self.optimizer_name, params, kvstore=self.kvstore)
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
                data = self._spread(xs[start : start + batch_size])
                label = self._spread(ys[start : start + batch_size])
                with mx.autograd.record():
                    outputs = [self.net(part) for part in data]
                    losses = [self.loss_fn(output, part) for output, part in zip(outputs, label)]
                if self.amp is None:
                    mx.autograd.backward(losses)
                else:
                    with self.amp.scale_loss(losses, self.trainer) as scaled:
                        mx.autograd.backward(scaled)
                samples = sum(len(part) for part in label)
                self.trainer.step(samples)
                batch_loss = [loss.sum() for loss in losses]
                hits = [(output.argmax(axis=1) == part).sum() for output, part in zip(outputs, label)]
                # MXNet runs asynchronously: wait for the update too, not just the loss.
                mx.nd.waitall()
                total_loss += sum(value.asscalar() for value in batch_loss)
                correct += sum(value.asscalar() for value in hits)
                recorder.step(samples)
            recorder.end_epoch(total_loss / len(xs), correct / len(xs))

    def _spread(self, batch: np.ndarray) -> list[Any]:
        """A global batch as one NDArray per context, each holding that replica's share."""
        parts = data_parallel.shards(batch, len(self.contexts))
        return [self.mx.nd.array(part, ctx=ctx) for part, ctx in zip(parts, self.contexts)]

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        return self.net(self.mx.nd.array(x, ctx=self.ctx)).asnumpy()

    def peak_device_memory_mb(self) -> Optional[float]:
        return None  # MXNet 1.x reports free/total device memory, not a peak
