"""Result documents for tests: a training result with placeholder figures, so each test states only
what it is about (a metric, a missing window, a note)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from workloads.result import Result, Warmup

RESULT = Result(
    framework="pytorch", versions={"python": "3.11"}, model="mlp", dataset="fashion_mnist", device="cpu",
    params=1, batch_size=32, epochs=1, samples_per_epoch=64, max_samples=None, optimizer="adam", lr=0.001,
    options={}, warmup=Warmup("steps", 1, "one warm-up step"), epoch_seconds=[], train_seconds=1.0,
    train_img_per_s=64.0, step_seconds_median=0.5, final_loss=0.5, final_accuracy=0.1, test_accuracy=None,
    inference_img_per_s=1.0, peak_rss_mb=1.0,
)  # fmt: skip


def result(**fields: Any) -> Result:
    """A training result with placeholder figures, `fields` overriding them."""
    return replace(RESULT, **fields)
