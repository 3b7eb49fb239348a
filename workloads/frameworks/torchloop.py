"""PyTorch: the model's ``nn.Module`` and the hand-written training loop a PyTorch user writes.

Batches are slices of a per-epoch permutation of the in-memory NumPy arrays, not a
``DataLoader``, whose per-sample collation would time Python rather than PyTorch.
The softmax is folded into ``CrossEntropyLoss``, which leaves the parameters unchanged.
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
from workloads.errors import UsageError
from workloads.frameworks import OptionValue
from workloads.timing import Recorder

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
            "hand-written loop over NumPy batches (no DataLoader)",
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

    def _join_process_group(self, gpu: bool) -> None:
        """Become replica LOCAL_RANK of torchrun's process group, on its own GPU when there are GPUs."""
        torch = self.torch
        world = int(os.environ.get(data_parallel.WORLD_VARIABLE, "1"))
        if world != self.replicas:
            raise UsageError(f"--replicas {self.replicas} with pytorch runs under torchrun, which started {world}")
        self.replica = int(os.environ[data_parallel.LOCAL_RANK_VARIABLE])
        if gpu:
            if torch.cuda.device_count() < self.replicas:
                raise UsageError(f"--replicas {self.replicas}: only {torch.cuda.device_count()} GPUs are visible")
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

    def _batch(self, array: np.ndarray) -> Any:
        tensor = self.torch.from_numpy(array).to(self.dev, non_blocking=True)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=self.torch.channels_last)
        return tensor

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, recorder: Recorder) -> None:
        self.net.train()
        for _ in range(epochs):
            recorder.start_epoch()
            order = self.rng.permutation(len(x))
            xs, ys = x[order], y[order]
            total_loss, correct = 0.0, 0
            for start in range(0, len(xs), batch_size):
                samples = len(xs[start : start + batch_size])
                inputs = self._batch(self._share(xs[start : start + batch_size]))
                targets = self._batch(self._share(ys[start : start + batch_size]))
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
                hits = (outputs.argmax(dim=1) == targets).sum()
                # .item() copies to the host, so it waits for every kernel queued above.
                total_loss += loss.item() * len(targets)
                correct += int(hits.item())
                recorder.step(samples)
            total_loss, correct = self._summed(total_loss, correct)
            recorder.end_epoch(total_loss / len(xs), correct / len(xs))

    def _share(self, batch: np.ndarray) -> np.ndarray:
        """This replica's part of a global batch (all of it with one replica)."""
        return data_parallel.shards(batch, self.replicas)[self.replica] if self.replicas > 1 else batch

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
