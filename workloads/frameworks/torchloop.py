"""PyTorch: the model's ``nn.Module`` and the hand-written training loop a PyTorch user writes.

Batches are slices of a per-epoch permutation of the in-memory NumPy arrays, not a
``DataLoader``, whose per-sample collation would time Python rather than PyTorch.
The softmax is folded into ``CrossEntropyLoss``, which leaves the parameters unchanged.
Mixed precision is ``torch.autocast`` (with a ``GradScaler`` for float16); channels_last
is a memory format of the model and of each 4-D batch.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional

import numpy as np

from workloads.frameworks import OptionValue
from workloads.timing import Recorder

AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
RMSPROP_ALPHA, RMSPROP_EPS = 0.9, 1e-7  # Keras's RMSprop defaults, set in every framework


def create(options: dict[str, OptionValue], lr: float, seed: int, optimizer: str) -> TorchAdapter:
    import torch

    torch.manual_seed(seed)
    return TorchAdapter(torch, options, lr=lr, seed=seed, optimizer=optimizer)


class TorchAdapter:
    channels_first = True  # PyTorch is fed NCHW; channels_last changes the memory format only

    def __init__(self, torch: Any, options: dict[str, OptionValue], *, lr: float, seed: int, optimizer: str) -> None:
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
        if self.precision != "fp32":
            self.notes.append(f"torch.autocast to {AUTOCAST_DTYPES[self.precision]}")
        scaler_needed = self.precision == "fp16"
        self.scaler = torch.amp.GradScaler(self.dev.type) if scaler_needed else None
        self.net: Any = None
        self.forward: Any = None

    def build(self, model: Any, inputs: Any) -> int:
        torch = self.torch
        self.net = model.torch(torch, inputs).to(self.dev)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.forward = torch.compile(self.net) if self.compile_model else self.net
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
                inputs = self._batch(xs[start : start + batch_size])
                targets = self._batch(ys[start : start + batch_size])
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
                recorder.step(len(targets))
            recorder.end_epoch(total_loss / len(xs), correct / len(xs))

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        if self.net.training:
            self.net.eval()
        with self.torch.inference_mode(), self._autocast():
            return self.forward(self._batch(x)).float().cpu().numpy()

    def peak_device_memory_mb(self) -> Optional[float]:
        if self.device != "gpu":
            return None
        return self.torch.cuda.max_memory_allocated() / 2**20
