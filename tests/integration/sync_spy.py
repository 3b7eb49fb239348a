"""Run inside a framework's image by test_timing_spies.py: train the MLP through the adapter's real
loop (``workloads.run.train``) with spies on every synchronisation, and print the counts as JSON.

- ``syncs``: calls of the adapter's ``synchronize`` (the recorder's only way to wait);
- ``waited``: calls of the framework's waiting primitives made by those (``block_until_ready``,
  ``waitall``, a read of the step's outputs);
- ``hidden``: waiting primitives called while an epoch's clock runs but outside ``synchronize``:
  a synchronisation per step, or any other, that the windows would silently absorb.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from workloads import models
from workloads.frameworks import create, parse_options
from workloads.run import build, to_layout, train
from workloads.timing import Recorder, warmup_batches

SAMPLES, BATCH, WINDOW, EPOCHS, WARMUP = 208, 16, 4, 2, 2  # 13 steps an epoch: windows of 4, 4, 4, 1


class Spy:
    def __init__(self) -> None:
        self.clock_running = False
        self.epochs_begun = False  # warm-up's own final synchronisation is not counted
        self.inside_sync = 0
        self.syncs = 0
        self.waited = 0
        self.hidden: list[str] = []

    def synchronize(self, sync: Callable[[], None]) -> Callable[[], None]:
        def counted() -> None:
            self.syncs += self.epochs_begun
            self.inside_sync += 1
            try:
                sync()
            finally:
                self.inside_sync -= 1

        return counted

    def patch(self, owner: Any, name: str, waits: Callable[..., bool] = lambda *_: True) -> None:
        """Count calls of ``owner.name`` for which ``waits(*args)`` says the host waits for the device."""
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            if not waits(*args):
                pass
            elif self.inside_sync:
                self.waited += 1
            elif self.clock_running:
                self.hidden.append(name)
            return original(*args, **kwargs)

        setattr(owner, name, counted)


def waiting_primitives(framework: str) -> list[tuple[Any, str, Callable[..., bool]]]:
    """Everything in the framework that makes the host wait for the device, and when it does."""
    always: Callable[..., bool] = lambda *_: True  # noqa: E731
    if framework == "pytorch":
        import torch

        # Reading a tensor waits only if it lives on a device (Adam reads its CPU step counters each step).
        on_device: Callable[..., bool] = lambda tensor, *_: tensor.device.type != "cpu"  # noqa: E731
        reads = [(torch.Tensor, name, on_device) for name in ("item", "cpu", "numpy", "tolist")]
        return [*reads, (torch.cuda, "synchronize", always)]
    if framework == "mxnet":
        import mxnet as mx

        nd = mx.nd.NDArray
        return [(mx.nd, "waitall", always), *((nd, name, always) for name in ("asnumpy", "asscalar", "wait_to_read"))]
    if framework == "jax":
        import jax

        return [(jax, "block_until_ready", always), (jax, "device_get", always)]
    from tensorflow.python.framework import ops

    return [(ops._EagerTensorBase, name, always) for name in ("numpy", "__float__", "__array__")]


def main(framework: str) -> None:
    spy = Spy()

    class SpiedRecorder(Recorder):
        def start_epoch(self) -> None:
            spy.epochs_begun = True
            super().start_epoch()
            spy.clock_running = True

        def stop_epoch(self) -> None:
            super().stop_epoch()
            spy.clock_running = False

    options = parse_options(framework, ["input=device"])
    adapter: Any = create(framework, options, lr=0.001, seed=0, optimizer="adam")
    adapter.options["input"] = "device"
    rng = np.random.default_rng(0)
    x = to_layout(rng.random((SAMPLES, 28, 28, 1), dtype=np.float32), adapter)
    y = rng.integers(0, 10, SAMPLES).astype(np.int64)
    build(adapter, models.get("mlp"), x.shape[1:], 10)
    adapter.place(x, y, "device")
    for owner, name, waits in waiting_primitives(framework):
        spy.patch(owner, name, waits)
    adapter.synchronize = spy.synchronize(adapter.synchronize)  # counted from the recorder and the loop alike
    recorder = SpiedRecorder(EPOCHS, WINDOW, sync=adapter.synchronize, log=lambda _: None)
    timing = train(adapter, warmup_batches(SAMPLES, BATCH, WARMUP), BATCH, EPOCHS, recorder)
    windows = [len(epoch.windows) for epoch in recorder.epochs]
    print(json.dumps({"syncs": spy.syncs, "waited": spy.waited, "hidden": spy.hidden, "windows": windows,
                      "steps": timing.steps}))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
