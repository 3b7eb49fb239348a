"""MXNet Gluon: the model's ``HybridBlock``, ``gluon.Trainer`` and an autograd loop.

Batches are slices of a per-epoch permutation of the training split, made before the epoch's clock
starts. ``input=device``: the split is an NDArray on each replica's context, copied once and
permuted there (``take``). ``input=host``: each epoch's permutation is a CPU NDArray and every batch
is copied with ``as_in_context`` — what ``NDArrayIter`` and Gluon's DataLoader hand a loop. MXNet's
engine runs asynchronously (on CPUs too): the loop queues steps and ``waitall`` only at window ends;
each step's losses are kept and its predicted classes written into an NDArray, read once per epoch.
The softmax is folded into ``SoftmaxCrossEntropyLoss`` (same parameters).
float16 is MXNet's AMP (GPU only); ``hybridize`` uses ``static_alloc``/``static_shape``.
Replicas are Gluon's own data parallelism: the parameters live on a list of contexts, each
global batch is split over them, and the trainer's kvstore (``device`` on GPUs) sums gradients.
With one replica that list holds one context and the loop is the same.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from workloads import replicas as data_parallel
from workloads.errors import RequestError
from workloads.frameworks import OptionValue
from workloads.timing import Recorder, warmup_indices

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
            raise RequestError(f"--replicas {replicas}: only {gpus} GPUs are visible")
        self.contexts = [mx.gpu(i) if gpus else mx.cpu(i) for i in range(replicas)]
        self.ctx = self.contexts[0]
        self.device = "gpu" if gpus else "cpu"
        self.kvstore = "device" if gpus else "local"
        self.versions = {"mxnet": mx.__version__}
        self.options: dict[str, Any] = dict(options)
        self.notes = [
            "hand-written autograd loop; losses and predictions kept as NDArrays, read once per epoch",
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
        self.input = "device"
        self.x: list[Any] = []
        self.y: list[Any] = []

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

    def place(self, x: np.ndarray, y: np.ndarray, where: str) -> None:
        mx = self.mx
        self.input = where
        labels = y.astype(np.float32)
        homes = self.contexts if where == "device" else [mx.cpu()]
        self.x = [mx.nd.array(x, ctx=ctx) for ctx in homes]
        self.y = [mx.nd.array(labels, ctx=ctx) for ctx in homes]
        mx.nd.waitall()
        self.notes.append(
            "input device: the training split is an NDArray on each replica's context, permuted there per epoch"
            if where == "device"
            else "input host: CPU NDArrays, each batch copied with as_in_context (as NDArrayIter feeds a loop)"
        )

    def synchronize(self) -> None:
        self.mx.nd.waitall()

    def warm_up(self, batch_sizes: list[int]) -> None:
        tallies = self._tallies(max(batch_sizes))
        for indices in warmup_indices(batch_sizes, self.x[0].shape[0]):
            xs, ys = self._permuted(indices)
            self._step(xs, ys, 0, len(indices), tallies)
        self.mx.nd.waitall()

    def fit(self, batch_size: int, epochs: int, recorder: Recorder) -> None:
        mx = self.mx
        samples = self.x[0].shape[0]
        for _ in range(epochs):
            xs, ys = self._permuted(self.rng.permutation(samples))
            tallies = self._tallies(samples)
            recorder.start_epoch()
            for start in range(0, samples, batch_size):
                stop = min(start + batch_size, samples)
                self._step(xs, ys, start, stop, tallies)
                recorder.step(stop - start)
            recorder.stop_epoch()
            losses, predicted = tallies
            loss = mx.nd.add_n(*[part.sum().as_in_context(self.ctx) for part in losses]).asscalar()
            hits = sum((part.as_in_context(ys[0].context) == ys[0]).sum().asscalar() for part in predicted)
            recorder.end_epoch(loss / samples, hits / samples)

    def _tallies(self, samples: int) -> tuple[list[Any], list[Any]]:
        """Per context: every sample's loss and predicted class (-1: another replica's sample), written by
        the steps themselves, so the loop never waits for a number and adds two operations per step."""
        nd = self.mx.nd
        return [nd.zeros((samples,), ctx=c) for c in self.contexts], [
            nd.full((samples,), -1, ctx=c) for c in self.contexts
        ]

    def _permuted(self, indices: np.ndarray) -> tuple[list[Any], list[Any]]:
        """The split's samples in ``indices`` order, gathered where the split lives (``take``)."""
        take = self.mx.nd.take
        xs = [take(x, self.mx.nd.array(indices, ctx=x.context)) for x in self.x]
        ys = [take(y, self.mx.nd.array(indices, ctx=y.context)) for y in self.y]
        return xs, ys

    def _step(self, xs: list[Any], ys: list[Any], start: int, stop: int, tallies: tuple[list, list]) -> None:
        """One training step on samples ``start:stop`` of the permuted split, queued on MXNet's engine."""
        mx = self.mx
        data, label = self._spread(xs, start, stop), self._spread(ys, start, stop)
        with mx.autograd.record():
            outputs = [self.net(part) for part in data]
            losses = [self.loss_fn(output, part) for output, part in zip(outputs, label)]
        if self.amp is None:
            mx.autograd.backward(losses)
        else:
            with self.amp.scale_loss(losses, self.trainer) as scaled:
                mx.autograd.backward(scaled)
        self.trainer.step(stop - start)
        for replica, (output, loss) in enumerate(zip(outputs, losses)):
            first, last = data_parallel.share_bounds(stop - start, len(self.contexts), replica)
            where = slice(start + first, start + last)
            tallies[0].append(loss)
            mx.nd.argmax(output, axis=1, out=tallies[1][replica][where])

    def _spread(self, arrays: list[Any], start: int, stop: int) -> list[Any]:
        """Samples ``start:stop`` as one NDArray per context, each holding that replica's share."""
        parts = []
        for replica, ctx in enumerate(self.contexts):
            first, last = data_parallel.share_bounds(stop - start, len(self.contexts), replica)
            home = arrays[replica] if len(arrays) > 1 else arrays[0]
            parts.append(home[start + first : start + last].as_in_context(ctx))
        return parts

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        return self.net(self.mx.nd.array(x, ctx=self.ctx)).asnumpy()

    def peak_device_memory_mb(self) -> Optional[float]:
        return None  # MXNet 1.x reports free/total device memory, not a peak

    def device_memory_bytes(self) -> Optional[int]:
        if self.device != "gpu":
            return None
        return int(self.mx.context.gpu_memory_info(0)[1])
