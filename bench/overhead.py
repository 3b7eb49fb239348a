"""Container overhead: the same workload and framework version, bare on the host vs in its cell container.

Runs A (bare) and B (container) interleaved, A B A B ..., so drift in the machine's load hits
both alike, and prints each pair's train img/s (warm-up excluded, as in every result) and the
median ratio container ÷ bare per workload. Goal: ≥ 0.99 on CPU for mlp and cnn.

The bare side needs the same framework version in a venv of the same interpreter build as the
image's (the image's base is Debian's python3.11; a pyenv build without PGO/LTO runs the Python
side of each step several percent slower, which would be charged to the container). On a Debian
bookworm host, for PyTorch 2.13.0:

    /usr/bin/python3.11 -m venv /tmp/bare && /tmp/bare/bin/pip install torch==2.13.0 numpy
    .venv/bin/python -m bench.overhead --bare-python /tmp/bare/bin/python

The container side is the real cell container (`engine.CellContainer`: no network, read-only
root, uid 1000, dropped capabilities) of `benchmatrix/<framework>:<version>-cpu`; both sides
see every CPU of the host (no cpuset), and both run `python -m workloads run` with the same
arguments on the same sample data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from orchestrator.backends import CONTAINER_CODE
from orchestrator.backends.engine import CELL_LABEL, RUN_LABEL, CellContainer, ContainerSpec, Mount, connect
from orchestrator.run import data
from workloads.contract import RunArgs, Training

REPO = Path(__file__).resolve().parent.parent

# Samples per epoch: the default matrix's (mlp runs all of Fashion-MNIST, cnn is capped at 6000).
DEFAULT_SAMPLES = {"mlp": 60000, "cnn": 6000}


def workload_args(framework: str, model: str, data_dir: str, out: str, args: argparse.Namespace) -> list[str]:
    """The one command line both sides run; only the paths differ."""
    training = Training(
        framework=framework,
        model=model,
        dataset="fashion_mnist",
        batch_size=args.batch_size,
        max_samples=args.max_samples or DEFAULT_SAMPLES.get(model, 6000),
        warmup_steps=args.warmup_steps,
    )
    run_args = RunArgs(training, out=Path(out), data_dir=Path(data_dir))
    return ["-m", "workloads", *run_args.argv()]


def run_bare(model: str, data_dir: Path, work: Path, args: argparse.Namespace) -> dict:
    out = work / f"bare-{model}.json"
    command = [args.bare_python, *workload_args(args.framework, model, str(data_dir), str(out), args)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        raise SystemExit(f"bare run failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(out.read_text())


def run_container(client, image: str, model: str, data_root: Path, work: Path, args: argparse.Namespace) -> dict:
    results = work / "results"
    results.mkdir(exist_ok=True)
    results.chmod(0o777)
    out = results / "result.json"
    out.unlink(missing_ok=True)
    spec = ContainerSpec(
        image=image,
        command=["python3", *workload_args(args.framework, model, "/data/fashion_mnist", "/results/result.json", args)],
        mounts=[
            Mount(data_root, "/data"),
            Mount(REPO / "workloads", f"{CONTAINER_CODE}/workloads"),
            Mount(results, "/results", read_only=False),
        ],
        labels={RUN_LABEL: "bench-overhead", CELL_LABEL: model},
        environment={"PYTHONPATH": CONTAINER_CODE},
    )
    with CellContainer(client, spec) as container:
        container.start()
        ended = container.wait(args.timeout)
    if ended.exit_code != 0:
        raise SystemExit(f"container run failed ({ended.exit_code}):\n{ended.logs[-3000:]}")
    return json.loads(out.read_text())


def measure_pair(
    client, image: str, model: str, data_root: Path, work: Path, args: argparse.Namespace, pair: int
) -> tuple[float, float, float]:
    """One A B pair, bare first; returns (bare img/s, container img/s, bare ÷ container median step time).

    The step ratio, from each run's median step, is the same quantity as the img/s ratio but
    insensitive to a burst of load from other processes during a few steps.
    """
    bare = run_bare(model, data_root / "fashion_mnist", work, args)
    boxed = run_container(client, image, model, data_root, work, args)
    if pair == 0:
        bare_framework = {k: v for k, v in bare["versions"].items() if k not in ("python", "numpy")}
        boxed_framework = {k: v for k, v in boxed["versions"].items() if k not in ("python", "numpy")}
        if bare_framework != boxed_framework:
            raise SystemExit(f"framework versions differ: bare {bare_framework}, container {boxed_framework}")
        print(f"{model}: bare {bare['versions']}, container {boxed['versions']}")
    ratio = boxed["train_img_per_s"] / bare["train_img_per_s"]
    step_ratio = bare["step_seconds_median"] / boxed["step_seconds_median"]
    print(
        f"  pair {pair + 1}: bare {bare['train_img_per_s']:9.1f} img/s, "
        f"container {boxed['train_img_per_s']:9.1f} img/s, ratio {ratio:.3f} (median-step ratio {step_ratio:.3f})",
        flush=True,
    )
    return bare["train_img_per_s"], boxed["train_img_per_s"], step_ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bare-python", default="/tmp/bare/bin/python", help="a Python with the framework installed")
    parser.add_argument("--framework", default="pytorch")
    parser.add_argument("--version", default="2.13.0")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-samples", type=int, help="samples per epoch (default: mlp 60000, cnn 6000)")
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--timeout", type=int, default=1800)
    args = parser.parse_args()
    if args.pairs < 5:
        parser.error("--pairs must be at least 5")
    image = f"benchmatrix/{args.framework}:{args.version}-cpu"
    client = connect()
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        work = Path(tmp)
        data_root = work / "data"
        n_train = args.max_samples or max(DEFAULT_SAMPLES.values())
        data.sample("fashion_mnist", data_root / "fashion_mnist", n_train=n_train, n_test=1000)
        for folder in (work, data_root, data_root / "fashion_mnist"):
            folder.chmod(0o755)
        print(f"{args.framework} {args.version}: bare {args.bare_python} vs {image}, {args.pairs} pairs A B A B")
        for model in args.models.split(","):
            pairs = [measure_pair(client, image, model, data_root, work, args, pair) for pair in range(args.pairs)]
            ratio = statistics.median(boxed / bare for bare, boxed, _ in pairs)
            step_ratio = statistics.median(step for _, _, step in pairs)
            best = max(boxed for _, boxed, _ in pairs) / max(bare for bare, _, _ in pairs)
            print(
                f"{model}: median ratio container / bare = {ratio:.3f} over {len(pairs)} pairs "
                f"(from median step times: {step_ratio:.3f}; best container / best bare: {best:.3f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
