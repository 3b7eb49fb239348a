"""Error rates of `regress --bisect` over a whole search, by simulation (no engine, seconds).

Each trial runs the real search (`bisect.search`, its stopping rule, alpha / steps per step) over
--versions versions; every step's rounds are drawn from a noise model (lognormal noise of --cv per
cell, a machine-state factor of --drift per round that both sides of the round share) and judged by
the real gate (`compare.compare` on rows shaped like the store's, as `regress.judge_rounds` passes them,
at the step's levels: its share of alpha spent over its looks).

Scenarios: "none": no version is slower (every REGRESSION is a false alarm); "k: S": versions from
a random position k on are slower by S (found: the first bad version named exactly).

    .venv/bin/python scripts/bisect_sim.py [--trials 400] [--versions 9] [--cv 0.03] [--drift 0.02]
        [--repeats 14] [--max-repeats 20]  (regress's defaults)
"""

from __future__ import annotations

import argparse
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Optional

from bench import cells
from orchestrator.analysis import bisect, regress
from orchestrator.analysis.compare import BrokenSide, Outcome, Settings, compare
from orchestrator.metrics import SPEED
from orchestrator.store.rows import CellRow

BASE = 1000.0  # img/s of GOOD


def row(run: int, cell_id: int, version: str, value: float) -> CellRow:
    """A stored cell as `select_cells` returns it, with only what the gate reads filled in."""
    return cells.row(
        id=cell_id,
        run_id=f"run{run}",
        config_hash=f"h{version}",
        version=version,
        image=f"benchmatrix/mxnet:{version}-cpu",
        image_id=f"sha256:{version}",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        finished_at=datetime(2026, 1, 1, tzinfo=UTC),
        versions=None,
        metrics={SPEED: value},
    )


@dataclass
class SimBench:
    """Rounds of GOOD against one version drawn from the noise model; the gate judges them."""

    versions: tuple[str, ...]
    slowdown: dict[str, float]  # version → relative slowdown against GOOD
    cv: float
    drift: float
    settings: Settings
    rng: random.Random
    rows: dict[str, list[CellRow]] = field(default_factory=dict)  # run id → its two cells
    runs_made: int = 0

    def build(self, version: str) -> Optional[BrokenSide]:
        return None

    def add_round(self, version: str, runs: list[str]) -> str:
        self.runs_made += 1
        state = math.exp(self.rng.gauss(0, self.drift))
        good = BASE * state * math.exp(self.rng.gauss(0, self.cv))
        cand = BASE * (1 - self.slowdown.get(version, 0.0)) * state * math.exp(self.rng.gauss(0, self.cv))
        run = self.runs_made
        first, second = (("good", good), (version, cand))
        if regress.round_order(len(runs)) == "BA":
            first, second = second, first
        ids = {first[0]: 2 * run, second[0]: 2 * run + 1}
        good_id, cand_id = ids["good"], ids[version]
        self.rows[f"run{run}"] = [row(run, good_id, self.versions[0], good), row(run, cand_id, version, cand)]
        return f"run{run}"

    def judge(self, version: str, runs: list[str]) -> bisect.Judgement:
        base = [r for run in runs for r in self.rows[run] if r.version == self.versions[0]]
        cand = [r for run in runs for r in self.rows[run] if r.version == version]
        return bisect.verdict(compare(base, cand, "build", self.settings, "good", version))


def trial(versions: tuple[str, ...], first_bad: Optional[int], size: float, args, settings, planned, rng) -> tuple:
    slow = {v: size for i, v in enumerate(versions) if first_bad is not None and i >= first_bad}
    bench = SimBench(versions, slow, args.cv, args.drift, settings, rng)
    state = bisect.SearchState("sim", versions)
    found = bisect.search(bench, state, planned, lambda: None)
    return found, len(state.steps), bench.runs_made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--versions", type=int, default=9)
    parser.add_argument("--cv", type=float, default=0.03)
    parser.add_argument("--drift", type=float, default=0.02)
    parser.add_argument("--repeats", type=int, default=14)
    parser.add_argument("--max-repeats", type=int, default=20)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    versions = tuple(f"1.{i}.0" for i in range(args.versions))
    planned = regress.looks(args.repeats, args.max_repeats)
    steps = bisect.steps_planned(len(versions))
    settings = bisect.step_settings(Settings(threshold=args.threshold, alpha=args.alpha), len(versions), planned)
    rng = random.Random(args.seed)
    print(
        f"{args.trials} searches per row over {len(versions)} versions; cell noise CV {args.cv:.0%}, round drift "
        f"{args.drift:.0%}; looks after {planned} rounds; alpha {args.alpha} / {steps} steps, "
        f"each step's share spent over its looks; "
        f"threshold {args.threshold:.0%}\n"
    )
    print(
        "| scenario | first bad named exactly | another version named | no regression | stopped inconclusive "
        "| steps (mean) | rounds (mean) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, size in (("none", 0.0), ("k: 10 % slower", 0.10), ("k: 20 % slower", 0.20), ("k: 5 % slower", 0.05)):
        counts: Counter = Counter()
        steps_taken = rounds_taken = 0
        for _ in range(args.trials):
            first_bad = None if size == 0 else rng.randrange(1, len(versions))
            found, taken, made = trial(versions, first_bad, size, args, settings, planned, rng)
            steps_taken, rounds_taken = steps_taken + taken, rounds_taken + made
            if found.outcome is Outcome.REGRESSION:
                right = first_bad is not None and found.first_bad == versions[first_bad]
                counts["exact" if right else "wrong"] += 1
            elif found.outcome is Outcome.NO_REGRESSION:
                counts["none"] += 1
            else:
                counts["inconclusive"] += 1
        share = {key: f"{counts[key] / args.trials:.1%}" for key in ("exact", "wrong", "none", "inconclusive")}
        print(
            f"| {label} | {share['exact']} | {share['wrong']} | {share['none']} | {share['inconclusive']} "
            f"| {steps_taken / args.trials:.1f} | {rounds_taken / args.trials:.1f} |"
        )


if __name__ == "__main__":
    main()
