"""Harness ÷ bare: is the img/s a workload reports the framework's own?

For each framework installed in this Python, trains the same model (the workloads' builder, built
and compiled by the same adapter code) on the same data, two ways, interleaved A B A B:

- **bare**: the plainest loop a user would time — the training split resident where the
  framework computes, consecutive slices as batches, no shuffle, no per-step bookkeeping, the
  same number of warm-up steps, then N steps timed with one synchronisation at the end. PyTorch
  and Gluon step with their own autograd calls; TensorFlow and JAX with the adapter's compiled
  Keras ``train_step`` on consecutive device slices (so a host copy on the harness side shows);
  keras-mxnet (NumPy-only ``fit``) with one ``model.fit``, timed from the end of its first epoch
  (the warm-up) to the end of its last;
- **harness**: ``workloads.run.run`` — exactly what a cell runs (``python -m workloads run``).
  ``--hidden-host-copy`` sends every harness batch of a Keras 3 framework through host memory,
  to show that the ratio sees such a copy.

It prints each round, the median over rounds of harness ÷ bare within the round (each pair ran
back to back, so slow drift of the machine cancels; goal ≥ 0.97), the medians of each side, and the
harness's ``warmup_seconds`` and timing-suspect flags. On a GPU host (no Docker needed)::

    python3 -m bench.harness --model resnet50 --batch-size 256 --option precision=bf16
    python3 -m bench.harness --model cnn --batch-size 64 --option compile=true

On CPU, inside each framework's image: ``bash bench/harness_cpu.sh`` (mlp and cnn, five frameworks).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workloads import models
from workloads.contract import RunArgs, Training
from workloads.datasets.idx import write_sample
from workloads.datasets.selection import TooManySamples, select
from workloads.frameworks import FRAMEWORKS, create, parse_options
from workloads.frameworks.keras_common import CompiledStep, KerasAdapter
from workloads.run import RunConfig, build, run, to_layout
from workloads.timing import steps_per_epoch

IMPORTS = {"pytorch": "torch", "mxnet": "mxnet", "tensorflow": "tensorflow", "jax": "jax", "keras-mxnet": "keras"}
DATASET = {"mlp": "fashion_mnist", "cnn": "fashion_mnist", "lenet": "fashion_mnist", "resnet50": "synthetic"}
# Training samples by default: ResNet-50's 256×256×3 float32 samples must fit the 3 GiB in-memory cap.
DEFAULT_SAMPLES = {"mlp": 60000, "resnet50": 2560}


@dataclass(frozen=True)
class Round:
    bare: float
    harness: float
    warmup_seconds: float
    suspect: bool


def installed(framework: str) -> bool:
    if framework == "keras-mxnet":
        return importlib.util.find_spec("keras") is not None and importlib.util.find_spec("mxnet") is not None
    return importlib.util.find_spec(IMPORTS[framework]) is not None


def config(args: argparse.Namespace, framework: str, data_dir: Path | None, options: dict[str, Any]) -> RunConfig:
    dataset = DATASET[args.model]
    training = Training(
        framework=framework,
        model=args.model,
        dataset=dataset,
        batch_size=args.batch_size,
        epochs=args.epochs,
        optimizer=args.optimizer,
        lr=args.lr,
        max_samples=args.samples if dataset != "synthetic" else None,
        generated_samples=args.samples if dataset == "synthetic" else None,
        warmup_steps=args.warmup_steps,
    )
    return RunConfig(RunArgs(training, out=Path(os.devnull), data_dir=data_dir), options)


def bare(config: RunConfig) -> float:
    """img/s of the plainest timed loop over resident data, same model and compile settings as the cell."""
    run_args, options, cfg = config.args, config.options, config.training
    data = select(cfg.dataset, run_args.data_dir, cfg.max_samples, run_args.seed, cfg.generated_samples)
    adapter: Any = create(cfg.framework, options, lr=cfg.lr, seed=run_args.seed, optimizer=cfg.optimizer)
    adapter.options["input"] = "device"
    x = to_layout(data.x_train, adapter)
    keep = len(x) - len(x) % cfg.batch_size
    x, y = x[:keep], data.y_train[:keep]
    build(adapter, models.get(cfg.model), x.shape[1:], data.num_classes)
    steps = cfg.epochs * steps_per_epoch(len(x), cfg.batch_size)
    if cfg.framework == "pytorch":
        return _bare_torch(adapter, x, y, cfg.batch_size, cfg.warmup_steps, steps)
    if cfg.framework == "mxnet":
        return _bare_gluon(adapter, x, y, cfg.batch_size, cfg.warmup_steps, steps)
    if adapter.step is not None:
        return _bare_resident(adapter, x, y, cfg.batch_size, cfg.warmup_steps, steps)
    return _bare_keras(adapter, x, y, cfg.batch_size, cfg.epochs)


def _bare_torch(adapter: Any, x: np.ndarray, y: np.ndarray, batch: int, warmup: int, steps: int) -> float:
    torch = adapter.torch
    xs, ys = adapter._layout(torch.from_numpy(x).to(adapter.dev)), torch.from_numpy(y).to(adapter.dev)
    per_epoch = len(x) // batch

    def train(step: int) -> None:
        start = (step % per_epoch) * batch
        adapter.optimizer.zero_grad(set_to_none=True)
        with adapter._autocast():
            loss = adapter.loss_fn(adapter.forward(xs[start : start + batch]), ys[start : start + batch])
        loss.backward()
        adapter.optimizer.step()

    return _timed(train, warmup, steps, batch, adapter.synchronize)


def _bare_gluon(adapter: Any, x: np.ndarray, y: np.ndarray, batch: int, warmup: int, steps: int) -> float:
    mx = adapter.mx
    xs, ys = mx.nd.array(x, ctx=adapter.ctx), mx.nd.array(y.astype(np.float32), ctx=adapter.ctx)
    per_epoch = len(x) // batch

    def train(step: int) -> None:
        start = (step % per_epoch) * batch
        with mx.autograd.record():
            loss = adapter.loss_fn(adapter.net(xs[start : start + batch]), ys[start : start + batch])
        loss.backward()
        adapter.trainer.step(batch)

    return _timed(train, warmup, steps, batch, mx.nd.waitall)


def _bare_resident(adapter: Any, x: np.ndarray, y: np.ndarray, batch: int, warmup: int, steps: int) -> float:
    """The adapter's compiled Keras train step over consecutive slices of the split, resident on the device."""
    ops, step = adapter.keras.ops, adapter.step
    xs, ys = ops.convert_to_tensor(x), ops.convert_to_tensor(y)
    per_epoch = len(x) // batch
    step.start(xs[:1], ys[:1])

    def train(index: int) -> None:
        start = (index % per_epoch) * batch
        step(xs, ys, start, start + batch)

    return _timed(train, warmup, steps, batch, step.wait)


def _timed(train: Any, warmup: int, steps: int, batch: int, sync: Any) -> float:
    for step in range(warmup):
        train(step)
    sync()
    began = time.perf_counter()
    for step in range(steps):
        train(step)
    sync()
    return steps * batch / (time.perf_counter() - began)


def _bare_keras(adapter: Any, x: np.ndarray, y: np.ndarray, batch: int, epochs: int) -> float:
    """One ``model.fit`` over resident arrays for one more epoch than timed; img/s between the ends of
    its first and last epochs, so fit's set-up and its first pass over the data stay out."""
    keras, model = adapter.keras, adapter.model
    ops = None if adapter.legacy else keras.ops
    resident = (x, y) if ops is None else (ops.convert_to_tensor(x), ops.convert_to_tensor(y))
    ends: list[float] = []
    stamp = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
    model.fit(*resident, batch_size=batch, epochs=epochs + 1, shuffle=False, verbose=0, callbacks=[stamp])
    return epochs * len(x) / (ends[-1] - ends[0])


class HostRoundTrip:
    """A compiled step whose every batch is first copied to host memory and back: the hidden copy that
    ``--hidden-host-copy`` puts on the harness side."""

    def __init__(self, step: CompiledStep, ops: Any) -> None:
        self.step, self.ops = step, ops

    def start(self, x: Any, y: Any) -> None:
        self.step.start(x, y)

    def __call__(self, xs: Any, ys: Any, start: int, stop: int) -> None:
        ops = self.ops
        x, y = (ops.convert_to_tensor(ops.convert_to_numpy(part[start:stop])) for part in (xs, ys))
        self.step(x, y, 0, stop - start)

    def wait(self) -> None:
        self.step.wait()

    def finish(self) -> tuple[float, float]:
        return self.step.finish()


@contextlib.contextmanager
def hidden_host_copy() -> Any:
    """While open, every Keras adapter built trains through ``HostRoundTrip``."""
    original = KerasAdapter.build

    def build_with_copy(self: KerasAdapter, model: Any, inputs: Any) -> int:
        params = original(self, model, inputs)
        if self.step is not None:
            self.step = HostRoundTrip(self.step, self.keras.ops)
        return params

    KerasAdapter.build = build_with_copy  # type: ignore[method-assign]
    try:
        yield
    finally:
        KerasAdapter.build = original  # type: ignore[method-assign]


def harness(cfg: RunConfig, copy: bool = False) -> tuple[float, float, bool]:
    with contextlib.redirect_stdout(io.StringIO()), hidden_host_copy() if copy else contextlib.nullcontext():
        result = run(cfg)
    return result.train_img_per_s, result.warmup_seconds, result.timing_suspect


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", action="append", choices=sorted(FRAMEWORKS), help="default: every installed")
    parser.add_argument("--model", default="mlp", choices=sorted(DATASET))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--samples", type=int, default=None, help="training samples (default: mlp 60000, resnet50 2560, else 6000)"
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--option", action="append", default=[], help="KEY=VALUE for every framework that has it")
    parser.add_argument("--input", action="append", choices=("device", "host"), help="harness input (default both)")
    parser.add_argument("--hidden-host-copy", action="store_true", help="copy each harness batch through the host")
    args = parser.parse_args()
    args.samples = args.samples or DEFAULT_SAMPLES.get(args.model, 6000)
    frameworks = [f for f in (args.framework or list(IMPORTS)) if installed(f)]
    if args.hidden_host_copy and set(frameworks) - {"tensorflow", "jax"}:
        print("--hidden-host-copy needs the resident Keras 3 loops: --framework jax or tensorflow", file=sys.stderr)
        return 2
    if not frameworks:
        print("no framework installed in this Python", file=sys.stderr)
        return 2
    if args.samples < args.batch_size:
        print(f"--samples {args.samples}: fewer than one batch of --batch-size {args.batch_size}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as work:
        data_dir = None
        if DATASET[args.model] == "fashion_mnist":
            data_dir = Path(work) / "fashion_mnist"
            write_sample(data_dir, n_train=args.samples, n_test=1000, seed=0)
        print(f"{'framework':12} {'model':8} {'input':6} {'bs':>4}  {'bare img/s':>11} {'harness':>11} "
              f"{'harness/bare':>12} {'(range)':>13}  warm-up s  suspect")  # fmt: skip
        for framework in frameworks:
            known = FRAMEWORKS[framework].options
            given = [pair for pair in args.option if pair.partition("=")[0] in known]
            for where in args.input or ["device", "host"]:
                options = parse_options(framework, [*given, f"input={where}"])
                cfg = config(args, framework, data_dir, options)
                try:
                    rounds = [Round(bare(cfg), *harness(cfg, args.hidden_host_copy)) for _ in range(args.rounds)]
                except TooManySamples as exc:
                    print(f"--samples {args.samples}: {exc.need}; pass --samples {exc.fits} or fewer", file=sys.stderr)
                    return 2
                _report(framework, args, where, given, rounds)
    return 0


def _report(framework: str, args: argparse.Namespace, where: str, given: list[str], rounds: list[Round]) -> None:
    ratios = [r.harness / r.bare for r in rounds]
    bare_median, harness_median = (statistics.median(side) for side in zip(*((r.bare, r.harness) for r in rounds)))
    spread = f"({min(ratios):.2f}-{max(ratios):.2f})"
    print(
        f"{framework:12} {args.model:8} {where:6} {args.batch_size:4}  {bare_median:11,.1f} {harness_median:11,.1f} "
        f"{statistics.median(ratios):12.3f} {spread:>13}  {statistics.median(r.warmup_seconds for r in rounds):9.2f}  "
        f"{sum(r.suspect for r in rounds)}/{len(rounds)}   {' '.join(given)}"
        f"   rounds bare {[round(r.bare) for r in rounds]} harness {[round(r.harness) for r in rounds]}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
