"""How good is `compare`'s regression verdict on real measurements? (issue: detector quality)

1. Measures one tiny cell (MXNet MLP, capped samples) --repeats times in real containers, through
   `python -m orchestrator run`, into its own store (reused when it already holds enough).
2. A/A: --trials times, splits the ok repeats at random into two disjoint halves of --per-side and
   judges them with `compare.judge` exactly as `compare` does. Every "regression" is a false alarm.
3. A/B: the same splits with the candidate's throughput divided by 1.10 (each step 10 % slower).
   Every "regression" is a detection.

Goals: 0 false alarms in the A/A trials; at least 19 of 20 A/B slowdowns detected.

    .venv/bin/python bench/detector.py [--repeats 24] [--trials 40] [--per-side 5]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from orchestrator.compare import Settings, judge
from orchestrator.stats import summarize
from orchestrator.store import Store
from orchestrator.table import SPEED

REPO = Path(__file__).resolve().parent.parent
SPEC = """name: detector
reference: mxnet
systems: {cpu: {kind: cpu, memory: 4g}}
frameworks:
  - {name: mxnet, version: "1.9.1", options: {hybridize: true}}
workloads:
  - {name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32], max_samples: 9600, warmup_steps: 10}
"""
SLOWDOWN = 1.10


def measured(store: Store) -> list[dict]:
    """The ok cells of the newest detector run."""
    runs = [run for run in store.run_ids() if store.run_row(run)["spec_name"] == "detector"]
    return [row for row in store.cell_rows(runs[-1]) if row["status"] == "ok"] if runs else []


def measure(store_path: Path, repeats: int, data_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as work:
        spec = Path(work) / "detector.yaml"
        spec.write_text(SPEC)
        command = [sys.executable, "-m", "orchestrator", "run", "--spec", str(spec), "--repeats", str(repeats)]
        command += ["--store", str(store_path), "--data-dir", str(data_dir), "--results-dir", str(Path(work) / "r")]
        subprocess.run(command, cwd=REPO, check=True)


def slowed(rows: list[dict]) -> list[dict]:
    return [{**row, "metrics": {SPEED: row["metrics"][SPEED] / SLOWDOWN}} for row in rows]


def trials(rows: list[dict], count: int, per_side: int, settings: Settings, slowdown: bool) -> list[str]:
    verdicts = []
    for trial in range(count):
        chosen = random.Random(trial).sample(rows, 2 * per_side)
        baseline, candidate = chosen[:per_side], chosen[per_side:]
        verdicts.append(judge("cell", baseline, slowed(candidate) if slowdown else candidate, settings).verdict)
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "results" / "detector.db")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    parser.add_argument("--repeats", type=int, default=24, help="real repeats of the cell (at least 2 x per-side)")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--per-side", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=Settings().threshold)
    parser.add_argument("--fresh", action="store_true", help="measure anew even if the store holds enough repeats")
    args = parser.parse_args()
    store = Store(str(args.store))
    rows = measured(store)
    if args.fresh or len(rows) < max(args.repeats, 2 * args.per_side):
        measure(args.store, args.repeats, args.data_dir)
        rows = measured(store)
    summary = summarize([row["metrics"][SPEED] for row in rows])
    print(
        f"cell: mxnet 1.9.1 mlp bs32, {summary.n} ok repeats: median {summary.median:,.0f} img/s, "
        f"CV {summary.cv:.1%}, range {summary.low:,.0f}–{summary.high:,.0f}"
    )
    settings = Settings(threshold=args.threshold)
    same = trials(rows, args.trials, args.per_side, settings, slowdown=False)
    slow = trials(rows, args.trials, args.per_side, settings, slowdown=True)
    alarms, detected = same.count("regression"), slow.count("regression")
    print(f"{args.per_side} vs {args.per_side} repeats per comparison, threshold {args.threshold:.0%}, alpha 0.05")
    print(f"A/A: {alarms} false alarms in {len(same)} comparisons (goal 0)")
    print(f"A/B (10% slower): {detected} of {len(slow)} detected (goal >= {int(0.95 * len(slow))})")
    return 0 if alarms == 0 and detected >= 0.95 * len(slow) else 1


if __name__ == "__main__":
    sys.exit(main())
