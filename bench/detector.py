"""How good is `compare`'s regression verdict on real measurements? (issue: detector quality)

1. Measures one cell (--framework's MLP, batch 256, one Fashion-MNIST epoch, pinned to one CPU)
   --repeats times in real containers, through `python -m orchestrator run`, into its own store
   (reused when it already holds enough of that framework's repeats).
2. A/A: --trials times, splits the ok repeats at random into two disjoint halves of --per-side and
   judges them with `compare.judge` exactly as `compare` does. Every "regression" is a false alarm.
3. A/B: the same splits with the candidate's throughput divided by 1.10 (each step 10 % slower).
   Every "regression" is a detection.
4. Order effect: the same A/A splits as rounds (baseline repeat i and candidate repeat i make
   round i), the candidate 5 % slower whenever it runs second — in every round when each round
   runs A then B (regress before issue 12), in every other round when the order alternates (A B,
   B A, …, as regress does now). A "regression" here is a false alarm caused by the order alone.
5. Sequential: A/A and A/B splits looked at after each of --looks repeats a side (regress
   --repeats 5 --max-repeats 15 looks after 5, 10, 15 rounds), stopping once the pair is settled,
   alpha split over the looks: its false alarms must stay at 0 like the fixed design's.

Each comparison size (--per-side, default 5, 10 and 15 repeats a side) gets its own row, beside the
slowdown the rank test is predicted to find at the measured noise (`stats.detectable_change`).
Goals: 0 false alarms in the A/A and alternating-order trials; at least 95 % of the A/B slowdowns
detected.

    .venv/bin/python bench/detector.py [--framework pytorch] [--repeats 30] [--trials 40]
                                       [--per-side 5,10,15] [--looks 5,10,15] [--fresh]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from orchestrator.compare import Settings, Verdict, judge
from orchestrator.stats import detectable_change, repeats_needed, summarize
from orchestrator.store import Store
from orchestrator.table import SPEED

REPO = Path(__file__).resolve().parent.parent
SPEC = """name: detector
reference: {framework}
systems: {{cpu: {{kind: cpu, memory: 4g, cpuset: "{cpuset}"}}}}
frameworks:
  - {{name: {framework}, version: "{version}", options: {options}}}
workloads:
  - {{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [{batch}], max_samples: {samples}, warmup_steps: 10}}
"""
SLOWDOWN = 1.10
ORDER_EFFECT = 1.05  # the candidate's slowdown whenever it runs second in a round
# The default matrix's CPU versions; MXNet as users run Gluon (hybridized).
FRAMEWORKS = {
    "mxnet": ("1.9.1", "{hybridize: true}"),
    "pytorch": ("2.13.0", "{}"),
    "tensorflow": ("2.21.0", "{}"),
    "jax": ("0.10.2", "{}"),
}


def measured(store: Store, framework: str) -> list[dict]:
    """The ok cells of the newest detector run of `framework`."""
    runs = [run for run in store.run_ids() if store.run_row(run)["spec_name"] == "detector"]
    rows = [store.cell_rows(run) for run in runs]
    rows = [cells for cells in rows if cells and cells[0]["framework"] == framework]
    return [row for row in rows[-1] if row["status"] == "ok"] if rows else []


def measure(
    store_path: Path, framework: str, repeats: int, samples: int, batch: int, cpuset: str, data_dir: Path
) -> None:
    version, options = FRAMEWORKS[framework]
    with tempfile.TemporaryDirectory() as work:
        spec = Path(work) / "detector.yaml"
        spec.write_text(
            SPEC.format(
                framework=framework, version=version, options=options, samples=samples, batch=batch, cpuset=cpuset
            )
        )
        command = [sys.executable, "-m", "orchestrator", "run", "--spec", str(spec), "--repeats", str(repeats)]
        command += ["--store", str(store_path), "--data-dir", str(data_dir), "--results-dir", str(Path(work) / "r")]
        subprocess.run(command, cwd=REPO, check=True)


def slowed(rows: list[dict], factor: float = SLOWDOWN) -> list[dict]:
    return [{**row, "metrics": {SPEED: row["metrics"][SPEED] / factor}} for row in rows]


def second_in(rows: list[dict], alternating: bool) -> list[dict]:
    """The candidate's repeats as rounds, slowed by the order effect in each round it ran second:
    every round under A B only, rounds 0, 2, 4, … when the order alternates."""
    return [
        slowed([row], ORDER_EFFECT)[0] if not alternating or index % 2 == 0 else row for index, row in enumerate(rows)
    ]


# What each trial does to the candidate's half, by column.
SCENARIOS = {
    "A/A": lambda rows: rows,
    "A/B": slowed,
    "order A B": lambda rows: second_in(rows, alternating=False),
    "order alternating": lambda rows: second_in(rows, alternating=True),
}


def split(rows: list[dict], trial: int, per_side: int) -> tuple[list[dict], list[dict]]:
    chosen = random.Random(trial).sample(rows, 2 * per_side)
    return chosen[:per_side], chosen[per_side:]


def trials(rows: list[dict], count: int, per_side: int, settings: Settings, scenario: str) -> list[Verdict]:
    verdicts = []
    for trial in range(count):
        baseline, candidate = split(rows, trial, per_side)
        verdicts.append(judge("cell", baseline, SCENARIOS[scenario](candidate), settings).verdict)
    return verdicts


def sequential(rows: list[dict], count: int, looks: tuple[int, ...], settings: Settings, scenario: str) -> list:
    """(verdict, repeats a side it took) per trial, looking after each of `looks` repeats and
    stopping once the pair is settled, each look at alpha / len(looks)."""
    settings = replace(settings, looks=len(looks))
    found = []
    for trial in range(count):
        baseline, candidate = split(rows, trial, looks[-1])
        candidate = SCENARIOS[scenario](candidate)
        for n in looks:
            pair = judge("cell", baseline[:n], candidate[:n], settings)
            if pair.settled:
                break
        found.append((pair.verdict, n))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "results" / "detector.db")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    parser.add_argument(
        "--framework",
        choices=sorted(FRAMEWORKS),
        default="pytorch",
        help="whose MLP supplies the real noise (PyTorch's was the lowest of the four here: CV 4-5%%)",
    )
    parser.add_argument("--repeats", type=int, default=30, help="real repeats of the cell (at least 2 x per-side)")
    parser.add_argument(
        "--samples", type=int, default=60000, help="training samples per repeat (Fashion-MNIST has 60,000)"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="256: a third less noise than 32 here")
    parser.add_argument(
        "--cpuset",
        default=str(max(os.sched_getaffinity(0))),
        help="the CPUs the cell is pinned to (default: the last one, leaving the others to the engine, the "
        "orchestrator and its monitor, whose bursts otherwise stall the cell's threads)",
    )
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument(
        "--per-side", type=_sizes, default=(5, 10, 15), help="repeats per side of each comparison, comma-separated"
    )
    parser.add_argument("--looks", type=_sizes, default=(5, 10, 15), help="repeats a side of the sequential looks")
    parser.add_argument("--threshold", type=float, default=Settings().threshold)
    parser.add_argument("--alpha", type=float, default=Settings().alpha)
    parser.add_argument("--fresh", action="store_true", help="measure anew even if the store holds enough repeats")
    args = parser.parse_args()
    store = Store(str(args.store))
    rows = measured(store, args.framework)
    if args.fresh or len(rows) < max(args.repeats, 2 * max(args.per_side), 2 * args.looks[-1]):
        measure(args.store, args.framework, args.repeats, args.samples, args.batch_size, args.cpuset, args.data_dir)
        rows = measured(store, args.framework)
    summary = summarize([row["metrics"][SPEED] for row in rows])
    print(
        f"cell: {args.framework} {rows[0]['version']} mlp bs{rows[0]['batch_size']}, "
        f"{rows[0]['config']['max_samples']:,} samples, "
        f"pinned to CPU {args.cpuset}, "
        f"{summary.n} ok repeats: median {summary.median:,.0f} img/s, CV {summary.cv:.1%}, "
        f"range {summary.low:,.0f}–{summary.high:,.0f}"
    )
    settings = Settings(threshold=args.threshold, alpha=args.alpha)
    print(f"threshold {settings.threshold:.0%}, alpha {settings.alpha}, {args.trials} random splits per row")
    print(
        "per side | A/A false alarms | A/B (10% slower) detected | order effect, A B: alarms | "
        "order effect, alternating: alarms | predicted reach at this CV | goals"
    )
    met = []
    for per_side in args.per_side:
        if 2 * per_side > len(rows):
            print(f"{per_side:8} | needs {2 * per_side} ok repeats, have {len(rows)}")
            continue
        counts = {
            name: trials(rows, args.trials, per_side, settings, name).count(Verdict.REGRESSION) for name in SCENARIOS
        }
        reach = detectable_change(summary.cv, per_side, per_side, settings.alpha)
        ok = counts["A/A"] == 0 and counts["order alternating"] == 0 and counts["A/B"] >= 0.95 * args.trials
        met += [per_side] if ok else []
        print(
            f"{per_side:8} | {counts['A/A']:>9} of {args.trials} | {counts['A/B']:>16} of {args.trials} | "
            f"{counts['order A B']:>16} of {args.trials} | {counts['order alternating']:>24} of {args.trials} | "
            f"{reach:>22.0%} | {'met' if ok else 'NOT met'}"
        )
    print(
        f"goals: 0 false alarms (A/A, alternating order), >= {math.ceil(0.95 * args.trials)} of {args.trials} detected"
    )
    for name in ("A/A", "A/B"):
        found = sequential(rows, args.trials, args.looks, settings, name)
        regressions = sum(verdict is Verdict.REGRESSION for verdict, _ in found)
        taken = sorted(n for _, n in found)
        print(
            f"sequential {name}, looks after {','.join(map(str, args.looks))} a side at alpha/{len(args.looks)}: "
            f"{regressions} of {args.trials} called regressions; repeats a side taken: "
            f"median {taken[len(taken) // 2]}, max {taken[-1]}"
        )
    print(
        f"repeats per side the rank test needs for 10% at CV {summary.cv:.1%}: "
        f"~{repeats_needed(summary.cv, SLOWDOWN - 1, settings.alpha)}"
    )
    return 0 if met else 1


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


if __name__ == "__main__":
    sys.exit(main())
