"""``python -m workloads check``: does each model build, predict and learn in this framework?

For each (model, dataset) case: build the model on one batch of the dataset, count its
trainable parameters, check the output shape, then train ``steps`` steps on that same
batch and record the loss of each step: if gradients flow, some later step's loss is below
the first one (Adam may overshoot on one step, so it need not fall every step). This is
what the integration tests run for every (model, framework) pair in the real images; it
is also a quick way to try a plugin model.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from workloads import models
from workloads.datasets import spec as dataset_spec
from workloads.datasets.selection import select
from workloads.files import write_atomically
from workloads.frameworks import OptionValue, create
from workloads.pairing import check_pairing
from workloads.run import build, to_layout
from workloads.timing import Recorder

CHECK_SCHEMA = "benchmatrix.check/1"


@dataclass(frozen=True)
class CaseResult:
    model: str
    dataset: str
    params: int
    input_shape: list[int]
    output_shape: list[int]
    losses: list[float]
    seconds: float
    ok: bool
    problem: Optional[str]
    device: str
    versions: dict[str, str]


def check_case(
    framework: str,
    model_name: str,
    dataset: str,
    data_root: Optional[Path],
    *,
    batch_size: int,
    steps: int,
    options: dict[str, OptionValue],
    optimizer: str,
    lr: float,
) -> CaseResult:
    check_pairing(framework, model_name, dataset)
    data_dir = data_root / dataset if data_root is not None and dataset_spec(dataset).needs_files else None
    data = select(dataset, data_dir, batch_size, seed=0)
    began = time.perf_counter()
    adapter = create(framework, options, lr=lr, seed=0, optimizer=optimizer)
    x = to_layout(data.x_train, adapter)
    params = build(adapter, models.get(model_name), x.shape[1:], data.num_classes)
    scores = adapter.predict_batch(x)
    adapter.place(x, data.y_train, "host")
    recorder = Recorder(steps, window_steps=1, sync=adapter.synchronize, log=lambda line: None)
    adapter.fit(len(x), steps, recorder)
    losses = [float(loss) for loss in recorder.losses]
    problem = None
    if scores.shape != (len(x), data.num_classes):
        problem = f"output shape {scores.shape}, expected {(len(x), data.num_classes)}"
    elif not all(np.isfinite(losses)) or not min(losses[1:]) < losses[0]:
        problem = f"loss never fell below its first value in {steps} steps on one batch: {losses}"
    return CaseResult(
        model=model_name,
        dataset=dataset,
        params=params,
        input_shape=list(x.shape[1:]),
        output_shape=list(scores.shape),
        losses=losses,
        seconds=time.perf_counter() - began,
        ok=problem is None,
        problem=problem,
        device=adapter.device,
        versions={"python": platform.python_version(), "numpy": np.__version__, **adapter.versions},
    )


def write_check(path: Path, framework: str, cases: list[CaseResult]) -> None:
    document = {"schema": CHECK_SCHEMA, "framework": framework, "cases": [asdict(case) for case in cases]}
    write_atomically(path, lambda f: f.write((json.dumps(document, indent=2) + "\n").encode()))
