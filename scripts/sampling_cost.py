"""The cost of monitoring to the cell it measures: img/s with sampling off, at 1 Hz and at 4 Hz, for the
same cell, interleaved in one process (the order rotates each round), on this host's engine.

    .venv/bin/python scripts/sampling_cost.py --framework pytorch --workload cnn --rounds 5 --data-dir data

Prints each round's img/s per rate, the median ratio of each rate to "off" over the rounds, and the
other work each monitored round read on the cell's CPUs (the sampler itself counts: the quiet floor).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from statistics import median

from orchestrator.backends import RESULT_FILE, CellTask
from orchestrator.backends.engine import connect
from orchestrator.backends.local import LocalBackend
from orchestrator.run.plan import Filters, plan
from orchestrator.run.scheduler import Placement
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import DEFAULT_SPEC, load_spec

RATES = (0.0, 1.0, 4.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", default="pytorch")
    parser.add_argument("--workload", default="cnn")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args()
    filters = Filters(system="cpu", frameworks=(args.framework,), workloads=(args.workload,))
    cell = plan(load_spec(DEFAULT_SPEC), DEFAULT_SPEC, load_catalog(), filters, repeats=1)[0]
    client = connect()
    backend = LocalBackend(client, args.data_dir.resolve())
    image_id = client.images.get(cell.image).id
    speeds: dict[float, list[float]] = {rate: [] for rate in RATES}
    floors: dict[float, list[float]] = {rate: [] for rate in RATES}
    with tempfile.TemporaryDirectory() as work:
        for index in range(args.rounds):
            order = RATES[index % len(RATES) :] + RATES[: index % len(RATES)]
            for rate in order:
                backend.sample_hz = rate
                task = CellTask("sampling-cost", cell, image_id, Path(work) / f"r{index}-{rate:g}", Placement(), 900)
                ended = backend.run_cell(task)
                assert ended.exit_code == 0, ended.logs[-2000:]
                speeds[rate].append(json.loads((task.cell_dir / RESULT_FILE).read_text())["train_img_per_s"])
                other = {m.name: m.value for m in ended.metrics}.get("cpu_other_cpus_max")
                if other is not None:  # the sampler's own cost shows up here as other work: the quiet floor
                    floors[rate].append(other)
            print(f"round {index + 1}: " + ", ".join(f"{rate:g} Hz {speeds[rate][-1]:,.1f}" for rate in RATES))
    for rate in RATES[1:]:
        ratios = [on / off for on, off in zip(speeds[rate], speeds[0.0])]
        print(f"{rate:g} Hz ÷ off: median {median(ratios):.3f} (rounds {min(ratios):.3f}–{max(ratios):.3f})")
        if floors[rate]:
            print(f"{rate:g} Hz: cpu_other_cpus_max per round {', '.join(f'{v:.2f}' for v in floors[rate])}")


if __name__ == "__main__":
    main()
