"""Does img/s depend on the pixels? Train img/s of a cell on three Fashion-MNIST-format datasets that
differ only in their training pixels — the generated sample (``data sample``: class prototypes plus
noise, what offline runs measure), uniform random pixels, and all zeros; same labels, shapes and
sizes — interleaved G U Z, G U Z, … in one process, each run exactly what a cell runs
(``workloads.run.run``).

It prints, per framework installed in this Python, the median img/s on each and the median over rounds
of uniform ÷ generated and zeros ÷ generated (each ratio within one round). On CPU, in each image:
``SCRIPT=bench.pixels MODELS=mlp bash bench/harness_cpu.sh``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.harness import IMPORTS, installed
from workloads.contract import RunArgs, Training
from workloads.datasets.idx import FILES, TRAIN_IMAGES, read_images, write_idx, write_sample
from workloads.frameworks import FRAMEWORKS, parse_options
from workloads.run import RunConfig, run

KINDS = ("generated", "uniform", "zeros")


def datasets(root: Path, samples: int) -> dict[str, Path]:
    """The three datasets under ``root``, identical but for their training pixels."""
    generated = root / "generated"
    write_sample(generated, n_train=samples, n_test=1000, seed=0)
    shape = read_images(generated / TRAIN_IMAGES).shape
    pixels = {
        "uniform": np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8),
        "zeros": np.zeros(shape, np.uint8),
    }
    found = {"generated": generated}
    for kind, images in pixels.items():
        folder = root / kind
        folder.mkdir()
        for name in FILES:
            if name != TRAIN_IMAGES:
                (folder / name).write_bytes((generated / name).read_bytes())
        write_idx(folder / TRAIN_IMAGES, images)
        found[kind] = folder
    return found


def img_per_s(framework: str, model: str, data_dir: Path, args: argparse.Namespace) -> float:
    training = Training(framework, model, "fashion_mnist", batch_size=args.batch_size, epochs=args.epochs)
    config = RunConfig(
        RunArgs(training, out=Path(os.devnull), data_dir=data_dir),
        parse_options(framework, [f for f in args.option if f.partition("=")[0] in FRAMEWORKS[framework].options]),
    )
    with contextlib.redirect_stdout(io.StringIO()):
        return run(config).train_img_per_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", action="append", choices=sorted(FRAMEWORKS), help="default: every installed")
    parser.add_argument("--model", default="mlp", choices=("mlp", "cnn", "lenet"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=30000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--option", action="append", default=[], help="KEY=VALUE for every framework that has it")
    args = parser.parse_args()
    frameworks = [f for f in (args.framework or list(IMPORTS)) if installed(f)]
    if not frameworks:
        print("no framework installed in this Python", file=sys.stderr)
        return 2
    ratios = "uniform/gen (range)  zeros/gen (range)"
    print(f"{'framework':12} {'model':6} {'generated':>10} {'uniform':>10} {'zeros':>10}  {ratios}")
    with tempfile.TemporaryDirectory() as work:
        folders = datasets(Path(work), args.samples)
        for framework in frameworks:
            rounds = [
                {kind: img_per_s(framework, args.model, folders[kind], args) for kind in KINDS}
                for _ in range(args.rounds)
            ]
            print(_row(framework, args.model, rounds), flush=True)
    return 0


def _row(framework: str, model: str, rounds: list[dict[str, float]]) -> str:
    medians = [statistics.median(r[kind] for r in rounds) for kind in KINDS]
    cells = []
    for kind in ("uniform", "zeros"):
        ratios = [r[kind] / r["generated"] for r in rounds]
        cells.append(f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f})")
    return f"{framework:12} {model:6} " + " ".join(f"{m:10,.0f}" for m in medians) + f"  {cells[0]:>19}  {cells[1]:>17}"


if __name__ == "__main__":
    sys.exit(main())
