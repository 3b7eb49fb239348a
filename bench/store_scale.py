"""Store ingest and `report` over one million metric rows (synthetic). Goal: each under 10 s.

20,000 cells (5 frameworks x 4 workloads x 5 batch sizes x 200 repeats) with 50 metrics each:
throughput, accuracy, epoch time and 47 operation micro-benchmark points. Ingest goes through
`Store.record_cells` (what an import uses); the report is the full `report` of that run, figures
and all.

    .venv/bin/python -m bench.store_scale [--store PATH_OR_URL] [--out DIR]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from bench import cells
from orchestrator.metrics import Metric
from orchestrator.render import report
from orchestrator.store.database import CellRecord, Store

FRAMEWORKS = {"tensorflow": 1.0, "pytorch": 1.4, "mxnet": 0.9, "keras-mxnet": 0.7, "jax": 1.2}
WORKLOADS = {"mlp": 15000.0, "cnn": 900.0, "lenet": 4000.0, "resnet20": 300.0}
BATCHES = (16, 32, 64, 128, 256)
REPEATS = 200
OPS = [(op, 10**exponent) for op in ("relu", "sigmoid", "tanh", "gemm", "dot", "flatten") for exponent in range(2, 10)][
    :47
]


def synthetic_cells(run_id: str) -> list[CellRecord]:
    rng = random.Random(0)
    records = []
    for framework, factor in FRAMEWORKS.items():
        for workload, base in WORKLOADS.items():
            for batch in BATCHES:
                speed = base * factor * (batch / 32) ** 0.3
                for repeat in range(REPEATS):
                    measured = speed * rng.gauss(1.0, 0.02)
                    values = [
                        Metric("train_img_per_s", measured, "img/s"),
                        Metric("epoch_seconds_median", 60000 / measured, "s"),
                        Metric("test_accuracy", 0.9 + rng.uniform(-0.01, 0.01), "1"),
                    ]
                    values += [Metric(f"ops/{op}/{size}", size * 1e-9 / factor, "s") for op, size in OPS]
                    records.append(
                        cells.of_framework(
                            framework,
                            workload,
                            run_id=run_id,
                            config_hash=f"{framework}-{workload}-{batch}",
                            repeat=repeat,
                            dataset="synthetic",
                            batch_size=batch,
                            config={"gpus": 0},
                            image_id="sha256:synthetic",
                            metrics=values,
                        )
                    )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="path or URL (default: a new SQLite file in a temporary directory)")
    parser.add_argument("--out", type=Path, help="report directory (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        store = Store(args.store or str(Path(work) / "scale.db"))
        run_id = f"scale-{int(time.time())}"
        cells.add_run(
            store, run_id, spec_name="scale", command="python -m bench.store_scale", host='{"hostname": "synthetic"}'
        )
        records = synthetic_cells(run_id)
        started = time.perf_counter()
        store.record_cells(records)
        ingest = time.perf_counter() - started
        rows = sum(len(record.metrics) for record in records)
        print(f"ingest: {len(records):,} cells, {rows:,} metric rows in {ingest:.1f} s ({store.engine.dialect.name})")
        started = time.perf_counter()
        built = report.build(store, run_id)
        paths = report.write(built, args.out or Path(work) / "report")
        took = time.perf_counter() - started
        print(f"report: {len(built.figures)} figures, {len(paths)} files in {took:.1f} s")


if __name__ == "__main__":
    main()
