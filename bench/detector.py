"""How good is `compare`'s regression verdict on real measurements? (issue: detector quality)

1. Measures one cell (--framework's MLP, batch 256, one Fashion-MNIST epoch, pinned to one CPU)
   --repeats times in real containers, through `python -m orchestrator run`, into its own store
   (reused when it already holds enough of that framework's repeats).
   With --simulate CV no engine runs: each trial draws its repeats from a noise model instead
   (normal noise of CV per cell, plus --drift, a normal machine-state factor per round that both
   sides of the round share).
2. Every trial is --per-side rounds (baseline repeat i and candidate repeat i make round i, stored
   as one run in the order they ran) judged with `compare.judge` exactly as `compare` judges what
   `regress` stores: rounds in both orders get the blocked test, rounds in one order the rank test.
   A/A: alternating rounds (A B, B A, …) of two disjoint random halves of the ok repeats. Every
   "regression" is a false alarm.
3. A/B: the same with the candidate's throughput divided by 1.10 (each step 10 % slower). Every
   "regression" is a detection.
4. Order effect, 5 %: "A B" — every round runs A then B (regress before issue 12) and the
   candidate is slower in each; "alt., candidate" — alternating, the candidate slower whenever it
   runs second (on average a 2.5 % slowdown of the candidate alone: not separable from a change of
   the build, but under the threshold); "alt., either" — alternating, whichever build runs second
   is slower (a machine-state order effect, which the blocked test takes out). A "regression" here
   is a false alarm caused by the order alone.
5. Sequential: A/A and A/B rounds looked at after each of --looks rounds (regress --repeats 5
   --max-repeats 15 looks after 5, 10, 15 rounds), stopping once the pair is settled, alpha split
   over the looks: its false alarms must stay at 0 like the fixed design's.

Each comparison size (--per-side, default 5, 10 and 15 rounds) gets its own row, beside the
slowdown the blocked test is predicted to find at the measured noise (`stats.t_reach`).
Goals: 0 false alarms in the A/A and alternating order-effect trials; at least 95 % of the A/B
slowdowns detected.

    .venv/bin/python bench/detector.py [--framework pytorch] [--repeats 30] [--trials 40]
                                       [--per-side 5,10,15] [--looks 5,10,15] [--fresh]
    .venv/bin/python bench/detector.py --simulate 0.045 [--drift 0.03]   (no engine, seconds)
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal

from orchestrator.compare import Settings, Verdict, judge
from orchestrator.stats import repeats_needed, summarize, t_reach
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
ORDER_EFFECT = 1.05  # the slowdown of a build the order effect hits when it runs second in a round
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


@dataclass(frozen=True)
class Scenario:
    """What a trial does to its rounds: the candidate's own slowdown, whether the order alternates,
    and whom the order effect slows when running second (nobody, the candidate only, either build)."""

    slowdown: float = 1.0
    alternating: bool = True
    order_effect: Literal["none", "candidate", "either"] = "none"


SCENARIOS = {
    "A/A": Scenario(),
    "A/B": Scenario(slowdown=SLOWDOWN),
    "order A B": Scenario(alternating=False, order_effect="candidate"),
    "order alt., candidate": Scenario(order_effect="candidate"),
    "order alt., either": Scenario(order_effect="either"),
}
# Two halves of --per-side repeats each, for one trial (real: a random split of the measured pool).
Draw = Callable[[int, int], tuple[list[dict], list[dict]]]


def as_rounds(baseline: list[dict], candidate: list[dict], scenario: Scenario) -> tuple[list[dict], list[dict]]:
    """Round i (one run) holds baseline[i] and candidate[i], their ids in the order they ran (the
    candidate second in rounds 0, 2, 4, … when alternating, in all under A B), slowed as `scenario` says."""
    base_rounds, cand_rounds = [], []
    for index, (base, cand) in enumerate(zip(baseline, candidate)):
        candidate_second = not scenario.alternating or index % 2 == 0
        order_hits_candidate = scenario.order_effect != "none" and candidate_second
        order_hits_baseline = scenario.order_effect == "either" and not candidate_second
        cand_factor = scenario.slowdown * (ORDER_EFFECT if order_hits_candidate else 1.0)
        base_factor = ORDER_EFFECT if order_hits_baseline else 1.0
        base_rounds.append(_in_round(base, base_factor, index, position=int(not candidate_second)))
        cand_rounds.append(_in_round(cand, cand_factor, index, position=int(candidate_second)))
    return base_rounds, cand_rounds


def _in_round(row: dict, factor: float, index: int, position: int) -> dict:
    return {
        **row,
        "run_id": f"round-{index}",
        "id": 2 * index + position,
        "metrics": {SPEED: row["metrics"][SPEED] / factor},
    }


def split(rows: list[dict]) -> Draw:
    """Disjoint random halves of the measured repeats, seeded by the trial."""

    def draw(trial: int, per_side: int) -> tuple[list[dict], list[dict]]:
        chosen = random.Random(trial).sample(rows, 2 * per_side)
        return chosen[:per_side], chosen[per_side:]

    return draw


def simulated(cv: float, drift: float, median: float = 1000.0) -> Draw:
    """Repeats from a noise model: per cell median * (1 + N(0, drift) of its round) * (1 + N(0, cv))."""

    def draw(trial: int, per_side: int) -> tuple[list[dict], list[dict]]:
        rng = random.Random(trial)
        states = [1 + rng.gauss(0, drift) for _ in range(per_side)]
        sides = [[_simulated_row(median * state * (1 + rng.gauss(0, cv))) for state in states] for _ in range(2)]
        return sides[0], sides[1]

    return draw


def _simulated_row(speed: float) -> dict:
    return {"status": "ok", "metrics": {SPEED: speed}}


def trials(draw: Draw, count: int, per_side: int, settings: Settings, scenario: Scenario) -> list[Verdict]:
    return [judge("cell", *as_rounds(*draw(trial, per_side), scenario), settings).verdict for trial in range(count)]


def sequential(draw: Draw, count: int, looks: tuple[int, ...], settings: Settings, scenario: Scenario) -> list:
    """(verdict, rounds it took) per trial, looking after each of `looks` rounds and stopping once
    the pair is settled, each look at alpha / len(looks)."""
    settings = replace(settings, looks=len(looks))
    found = []
    for trial in range(count):
        baseline, candidate = as_rounds(*draw(trial, looks[-1]), scenario)
        for n in looks:
            pair = judge("cell", baseline[:n], candidate[:n], settings)
            if pair.settled:
                break
        found.append((pair.verdict, n))
    return found


def main() -> int:
    args = _parser().parse_args()
    if args.simulate is not None:
        draw, cv, available = simulated(args.simulate, args.drift), args.simulate, None
        print(
            f"simulated (no engine): normal noise of CV {args.simulate:.1%} per cell, "
            f"a normal machine-state drift of {args.drift:.1%} per round shared by both sides"
        )
    else:
        rows = _measured_rows(args)
        summary = summarize([row["metrics"][SPEED] for row in rows])
        draw, cv, available = split(rows), summary.cv, len(rows)
        print(
            f"cell: {args.framework} {rows[0]['version']} mlp bs{rows[0]['batch_size']}, "
            f"{rows[0]['config']['max_samples']:,} samples, pinned to CPU {args.cpuset}, "
            f"{summary.n} ok repeats: median {summary.median:,.0f} img/s, CV {summary.cv:.1%}, "
            f"range {summary.low:,.0f}–{summary.high:,.0f}"
        )
    settings = Settings(threshold=args.threshold, alpha=args.alpha)
    print(f"threshold {settings.threshold:.0%}, alpha {settings.alpha}, {args.trials} trials per row")
    names = list(SCENARIOS)
    print(
        "rounds | A/A alarms | A/B (10% slower) found | order effect 5%, alarms: "
        + " | ".join(names[2:])
        + " | predicted reach | goals"
    )
    met = []
    for per_side in args.per_side:
        if available is not None and 2 * per_side > available:
            print(f"{per_side:6} | needs {2 * per_side} ok repeats, have {available}")
            continue
        counts = {
            name: trials(draw, args.trials, per_side, settings, scenario).count(Verdict.REGRESSION)
            for name, scenario in SCENARIOS.items()
        }
        ok = (
            counts["A/A"] == counts["order alt., candidate"] == counts["order alt., either"] == 0
            and counts["A/B"] >= 0.95 * args.trials
        )
        met += [per_side] if ok else []
        print(
            f"{per_side:6} | "
            + " | ".join(f"{counts[name]:>2} of {args.trials}" for name in names)
            + f" | {-math.expm1(-_blocked_reach(cv, per_side, settings.alpha)):>6.1%} | {'met' if ok else 'NOT met'}"
        )
    print(
        f"goals: 0 false alarms (A/A, alternating order effects), >= {math.ceil(0.95 * args.trials)} of "
        f"{args.trials} detected"
    )
    for name in ("A/A", "A/B"):
        found = sequential(draw, args.trials, args.looks, settings, SCENARIOS[name])
        regressions = sum(verdict is Verdict.REGRESSION for verdict, _ in found)
        taken = sorted(n for _, n in found)
        print(
            f"sequential {name}, looks after {','.join(map(str, args.looks))} rounds at alpha/{len(args.looks)}: "
            f"{regressions} of {args.trials} called regressions; rounds taken: "
            f"median {taken[len(taken) // 2]}, max {taken[-1]}"
        )
    needed = next(n for n in range(3, 1000) if _blocked_reach(cv, n, settings.alpha) <= math.log(SLOWDOWN))
    print(
        f"rounds the blocked test needs for 10% at CV {cv:.1%}: ~{needed} "
        f"(the rank test, without rounds: ~{repeats_needed(cv, SLOWDOWN - 1, settings.alpha)} repeats per side)"
    )
    return 0 if met else 1


def _blocked_reach(cv: float, rounds: int, alpha: float) -> float:
    """The log change the blocked test finds 95 % of the time: a round's log ratio has noise ~sqrt(2) CV."""
    return t_reach(math.sqrt(2) * cv / math.sqrt(rounds), rounds - 2, alpha)


def _measured_rows(args: argparse.Namespace) -> list[dict]:
    """The real repeats, measured (in containers) only when the store lacks enough of them."""
    store = Store(str(args.store))
    rows = measured(store, args.framework)
    if args.fresh or len(rows) < max(args.repeats, 2 * max(args.per_side), 2 * args.looks[-1]):
        measure(args.store, args.framework, args.repeats, args.samples, args.batch_size, args.cpuset, args.data_dir)
        rows = measured(store, args.framework)
    return rows


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--simulate", type=float, metavar="CV", help="no engine: draw repeats from normal noise of this CV per cell"
    )
    parser.add_argument("--drift", type=float, default=0.0, help="with --simulate: per-round shared noise (CV)")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument(
        "--per-side", type=_sizes, default=(5, 10, 15), help="rounds (repeats a side) per comparison, comma-separated"
    )
    parser.add_argument("--looks", type=_sizes, default=(5, 10, 15), help="rounds of the sequential looks")
    parser.add_argument("--threshold", type=float, default=Settings().threshold)
    parser.add_argument("--alpha", type=float, default=Settings().alpha)
    parser.add_argument("--fresh", action="store_true", help="measure anew even if the store holds enough repeats")
    return parser


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


if __name__ == "__main__":
    sys.exit(main())
