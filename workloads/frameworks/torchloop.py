"""PyTorch: ``nn.Sequential`` and the hand-written training loop a PyTorch user writes.

Batches are slices of a per-epoch permutation of the in-memory NumPy arrays, not a
``DataLoader``, whose per-sample collation would time Python rather than PyTorch.
The softmax is folded into ``CrossEntropyLoss``, which leaves the parameters unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workloads.timing import Recorder


def create(options: dict[str, bool | None], lr: float, seed: int) -> TorchAdapter:
    import torch

    torch.manual_seed(seed)
    return TorchAdapter(torch, compile_model=bool(options["compile"]), lr=lr, seed=seed)


class TorchAdapter:
    def __init__(self, torch: Any, *, compile_model: bool, lr: float, seed: int) -> None:
        self.torch = torch
        self.lr = lr
        self.compile_model = compile_model
        self.rng = np.random.default_rng(seed)
        gpu = torch.cuda.is_available()
        self.dev = torch.device("cuda" if gpu else "cpu")
        self.device = "gpu" if gpu else "cpu"
        self.versions = {"torch": torch.__version__}
        self.options: dict[str, Any] = {"compile": compile_model}
        self.notes = [
            "hand-written loop over NumPy batches (no DataLoader)",
            "softmax folded into CrossEntropyLoss",
        ]
        self.net: Any = None
        self.forward: Any = None

    def build(self, model: str) -> int:
        nn = self.torch.nn
        if model == "mlp":
            layers = [nn.Flatten(), nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 10)]
        else:
            layers = [
                nn.Conv2d(1, 64, kernel_size=3),
                nn.ReLU(),
                nn.Conv2d(64, 32, kernel_size=3),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(32 * 24 * 24, 10),
            ]
        self.net = nn.Sequential(*layers).to(self.dev)
        self.forward = self.torch.compile(self.net) if self.compile_model else self.net
        self.optimizer = self.torch.optim.Adam(self.net.parameters(), lr=self.lr)
        self.loss_fn = nn.CrossEntropyLoss()
        return sum(p.numel() for p in self.net.parameters())

    def _batch(self, array: np.ndarray) -> Any:
        return self.torch.from_numpy(array).to(self.dev, non_blocking=True)

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, recorder: Recorder) -> None:
        x = x.reshape(len(x), 1, 28, 28)
        labels = y.astype(np.int64)
        self.net.train()
        for _ in range(epochs):
            recorder.start_epoch()
            order = self.rng.permutation(len(x))
            xs, ys = x[order], labels[order]
            total_loss, correct = 0.0, 0
            for start in range(0, len(xs), batch_size):
                inputs = self._batch(xs[start : start + batch_size])
                targets = self._batch(ys[start : start + batch_size])
                self.optimizer.zero_grad(set_to_none=True)
                outputs = self.forward(inputs)
                loss = self.loss_fn(outputs, targets)
                loss.backward()
                self.optimizer.step()
                hits = (outputs.argmax(dim=1) == targets).sum()
                # .item() copies to the host, so it waits for every kernel queued above.
                total_loss += loss.item() * len(targets)
                correct += int(hits.item())
                recorder.step(len(targets))
            recorder.end_epoch(total_loss / len(xs), correct / len(xs))

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        x = x.reshape(len(x), 1, 28, 28)
        self.net.eval()
        with self.torch.inference_mode():
            scores = [
                self.forward(self._batch(x[start : start + batch_size])).cpu().numpy()
                for start in range(0, len(x), batch_size)
            ]
        return np.concatenate(scores)
