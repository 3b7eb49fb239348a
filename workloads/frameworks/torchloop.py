"""PyTorch: the model's ``nn.Module`` and the hand-written training loop a PyTorch user writes.

Batches are slices of a per-epoch permutation of the training split, made before the epoch's
clock starts. ``input=device``: the split is a tensor on the device, copied once, permuted there.
``input=host``: it stays in (pinned, on a GPU) host memory and each batch is copied with
``non_blocking`` on a side stream one step ahead — what ``DataLoader(pin_memory=True)`` gives without
its per-sample collation, which would time Python rather than PyTorch. The loss and hits are
summed on the device and read once per epoch, so no step waits for the host. The softmax is
folded into ``CrossEntropyLoss``, which leaves the parameters unchanged.
Mixed precision is ``torch.autocast`` (with a ``GradScaler`` for float16); channels_last
is a memory format of the model and of each 4-D batch. With ``--replicas N`` the process is one
of torchrun's N workers: DistributedDataParallel over NCCL (GPUs) or Gloo (CPU replicas), each
worker training on its contiguous share of every global batch.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Optional

import numpy as np

from workloads import replicas as data_parallel
from workloads.errors import RequestError
from workloads.frameworks import OptionValue
from workloads.timing import Recorder, warmup_indices

AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
RMSPROP_ALPHA, RMSPROP_EPS = 0.9, 1e-7  # Keras's RMSprop defaults, set in every framework


def create(options: dict[str, OptionValue], lr: float, seed: int, optimizer: str, replicas: int = 1) -> TorchAdapter:
    import torch

    torch.manual_seed(seed)
    return TorchAdapter(torch, options, lr=lr, seed=seed, optimizer=optimizer, replicas=replicas)


class TorchAdapter:
    channels_first = True  # PyTorch is fed NCHW; channels_last changes the memory format only

    def __init__(
        self, torch: Any, options: dict[str, OptionValue], *, lr: float, seed: int, optimizer: str, replicas: int = 1
    ) -> None:
        self.torch = torch
        self.lr = lr
        self.optimizer_name = optimizer
        self.compile_model = bool(options["compile"])
        self.channels_last = options["data_format"] == "channels_last"
        self.precision = str(options["precision"])
        self.rng = np.random.default_rng(seed)
        gpu = torch.cuda.is_available()
        self.dev = torch.device("cuda" if gpu else "cpu")
        self.device = "gpu" if gpu else "cpu"
        self.versions = {"torch": torch.__version__}
        self.options: dict[str, Any] = dict(options)
        self.notes = [
            "hand-written training loop (no DataLoader); losses and predictions kept on the device, read per epoch",
            "softmax folded into CrossEntropyLoss",
        ]
        self.replicas, self.replica = replicas, 0
        if replicas > 1:
            self._join_process_group(gpu)
        if self.precision != "fp32":
            self.notes.append(f"torch.autocast to {AUTOCAST_DTYPES[self.precision]}")
        scaler_needed = self.precision == "fp16"
        self.scaler = torch.amp.GradScaler(self.dev.type) if scaler_needed else None
        self.net: Any = None
        self.forward: Any = None
        self.input = "device"
        self.x: Any = None
        self.y: Any = None
        self.xs: Any = None
        self.ys: Any = None
        self.copies: Any = None  # the host-to-device copy stream (input=host on a GPU)

    def _join_process_group(self, gpu: bool) -> None:
        """Become replica LOCAL_RANK of torchrun's process group, on its own GPU when there are GPUs."""
        torch = self.torch
        world = int(os.environ.get(data_parallel.WORLD_VARIABLE, "1"))
        if world != self.replicas:
            raise RequestError(f"--replicas {self.replicas} with pytorch runs under torchrun, which started {world}")
        self.replica = int(os.environ[data_parallel.LOCAL_RANK_VARIABLE])
        if gpu:
            if torch.cuda.device_count() < self.replicas:
                raise RequestError(f"--replicas {self.replicas}: only {torch.cuda.device_count()} GPUs are visible")
            self.dev = torch.device("cuda", self.replica)
            torch.cuda.set_device(self.dev)
        backend = "nccl" if gpu else "gloo"
        torch.distributed.init_process_group(backend)
        self.notes.append(
            f"DistributedDataParallel over {self.replicas} {'GPUs' if gpu else 'CPU processes'} ({backend}), "
            "one torchrun process per replica"
        )

    def build(self, model: Any, inputs: Any) -> int:
        torch = self.torch
        self.net = model.torch(torch, inputs).to(self.dev)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        trained = self.net
        if self.replicas > 1:
            ids = [self.dev.index] if self.dev.type == "cuda" else None
            trained = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.forward = torch.compile(trained) if self.compile_model else trained
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = self._optimizer(trainable)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        if self.device == "gpu":
            torch.cuda.reset_peak_memory_stats()
        return sum(p.numel() for p in trainable)

    def _optimizer(self, parameters: list[Any]) -> Any:
        optim = self.torch.optim
        if self.optimizer_name == "sgd":
            return optim.SGD(parameters, lr=self.lr)
        if self.optimizer_name == "rmsprop":
            return optim.RMSprop(parameters, lr=self.lr, alpha=RMSPROP_ALPHA, eps=RMSPROP_EPS)
        return optim.Adam(parameters, lr=self.lr)

    def _autocast(self) -> Any:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return self.torch.autocast(self.dev.type, dtype=getattr(self.torch, AUTOCAST_DTYPES[self.precision]))

    def _layout(self, tensor: Any) -> Any:
        if self.channels_last and tensor.dim() == 4:
            return tensor.contiguous(memory_format=self.torch.channels_last)
        return tensor

    def _batch(self, array: np.ndarray) -> Any:
        return self._layout(self.torch.from_numpy(array).to(self.dev))

    def place(self, x: np.ndarray, y: np.ndarray, where: str) -> None:
        torch = self.torch
        self.input = where
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        pinned = where == "host" and self.dev.type == "cuda"
        if where == "device":
            self.x, self.y = self.x.to(self.dev), self.y.to(self.dev)
        # Each epoch's permutation is gathered into these, before the epoch's clock starts.
        self.xs = torch.empty(self.x.shape, dtype=self.x.dtype, device=self.x.device, pin_memory=pinned)
        self.ys = torch.empty(self.y.shape, dtype=self.y.dtype, device=self.y.device, pin_memory=pinned)
        if where == "device":
            self.notes.append("input device: the training split is a tensor on the device, permuted there per epoch")
        elif pinned:
            self.copies = torch.cuda.Stream(self.dev)
            self.notes.append(
                "input host: pinned host memory, each batch copied non_blocking on a side stream one step ahead"
            )
        else:
            self.notes.append("input host: batches sliced from host memory (the CPU is the device: no copy)")

    def synchronize(self) -> None:
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize(self.dev)

    def warm_up(self, batch_sizes: list[int]) -> None:
        self.net.train()
        losses: list[Any] = []  # each step's loss tensor, read once at the end
        predicted = self._predictions(max(batch_sizes))
        for indices in warmup_indices(batch_sizes, len(self.x)):
            index = self.torch.from_numpy(indices).to(self.x.device)
            self._step(*self._on_device(self.x[index], self.y[index]), losses, self._share(predicted[: len(indices)]))
        self.synchronize()

    def fit(self, batch_size: int, epochs: int, recorder: Recorder) -> None:
        self.net.train()
        samples = len(self.x)
        torch = self.torch
        for _ in range(epochs):
            order = torch.from_numpy(self.rng.permutation(samples)).to(self.x.device)
            torch.index_select(self.x, 0, order, out=self.xs)
            torch.index_select(self.y, 0, order, out=self.ys)
            losses: list[Any] = []
            predicted = self._predictions(samples)
            recorder.start_epoch()
            steps = zip(range(0, samples, batch_size), self._batches(self.xs, self.ys, batch_size))
            for start, (inputs, targets) in steps:
                stop = min(start + batch_size, samples)
                self._step(inputs, targets, losses, self._share(predicted[start:stop]))
                recorder.step(stop - start)
            recorder.stop_epoch()
            sizes = torch.tensor([size for _, size in losses], dtype=torch.float64, device=self.dev)
            loss_sum = (torch.stack([loss for loss, _ in losses]).double() * sizes).sum()
            hits = (predicted == self.ys.to(self.dev)).sum()
            loss, correct = self._summed(float(loss_sum.item()), float(hits.item()))
            recorder.end_epoch(loss / samples, correct / samples)

    def _predictions(self, samples: int) -> Any:
        """Every sample's predicted class (-1: another replica's sample), written by the steps on the
        device, so that no step waits for the host."""
        return self.torch.full((samples,), -1, dtype=self.torch.int64, device=self.dev)

    def _on_device(self, xs: Any, ys: Any) -> tuple[Any, Any]:
        """This replica's share of a global batch, on its device in the model's memory format."""
        xs, ys = self._share(xs), self._share(ys)
        return self._layout(xs.to(self.dev, non_blocking=True)), ys.to(self.dev, non_blocking=True)

    def _batches(self, xs: Any, ys: Any, batch_size: int) -> Any:
        """(inputs, targets) of each step on the device; from host memory the next copy runs a step ahead."""
        starts = range(0, len(xs), batch_size)
        if self.replicas == 1 and (self.input == "device" or self.dev.type != "cuda"):
            for start in starts:  # already where the model computes: slices only
                yield self._layout(xs[start : start + batch_size]), ys[start : start + batch_size]
            return
        if self.input == "device" or self.dev.type != "cuda":
            for start in starts:
                yield self._on_device(xs[start : start + batch_size], ys[start : start + batch_size])
            return
        torch = self.torch
        compute = torch.cuda.current_stream(self.dev)

        def copy(start: int) -> tuple[Any, Any]:
            with torch.cuda.stream(self.copies):
                return self._on_device(xs[start : start + batch_size], ys[start : start + batch_size])

        ahead = copy(0)
        for start in starts:
            compute.wait_stream(self.copies)
            inputs, targets = ahead
            inputs.record_stream(compute)
            targets.record_stream(compute)
            if start + batch_size < len(xs):
                ahead = copy(start + batch_size)
            yield inputs, targets

    def _step(self, inputs: Any, targets: Any, losses: list[tuple[Any, int]], predicted: Any) -> None:
        """One training step, queued: nothing here waits for the device. The step's loss is kept (no
        kernel) and its predicted classes written by one argmax, for the epoch's loss and accuracy."""
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            outputs = self.forward(inputs)
            loss = self.loss_fn(outputs, targets)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        losses.append((loss.detach(), len(targets)))
        self.torch.argmax(outputs.detach(), dim=1, out=predicted)

    def _share(self, batch: Any) -> Any:
        """This replica's part of a global batch (all of it with one replica)."""
        if self.replicas == 1:
            return batch
        start, stop = data_parallel.share_bounds(len(batch), self.replicas, self.replica)
        return batch[start:stop]

    def _summed(self, loss: float, correct: float) -> tuple[float, float]:
        """An epoch's loss and hits summed over the replicas, so every replica reports the whole epoch."""
        if self.replicas == 1:
            return loss, correct
        totals = self.torch.tensor([loss, float(correct)], dtype=self.torch.float64, device=self.dev)
        self.torch.distributed.all_reduce(totals)
        return float(totals[0]), float(totals[1])

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        if self.net.training:
            self.net.eval()
        with self.torch.inference_mode(), self._autocast():
            return self.forward(self._batch(x)).float().cpu().numpy()

    def peak_device_memory_mb(self) -> Optional[float]:
        if self.device != "gpu":
            return None
        return self.torch.cuda.max_memory_allocated() / 2**20

    def device_memory_bytes(self) -> Optional[int]:
        if self.device != "gpu":
            return None
        return int(self.torch.cuda.get_device_properties(self.dev).total_memory)
