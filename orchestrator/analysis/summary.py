"""Statistics over repeats and over sampled series. Pure functions, so the maths is unit-tested.

Repeats: median (robust to one slow repeat), interquartile range (spread of the middle half) and
coefficient of variation (sample standard deviation / mean: spread relative to the level, so
frameworks of different speeds compare). Series (monitoring samples): mean, 95th percentile, max.
Percentiles interpolate linearly between order statistics (numpy's default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import mean, median, stdev
from typing import Optional

import numpy as np

from orchestrator.status import CellStatus
from orchestrator.store.rows import CellRow


@dataclass(frozen=True)
class RepeatSummary:
    n: int
    median: float
    iqr: float
    cv: Optional[float]  # None with fewer than two values or a zero mean


@dataclass(frozen=True)
class SeriesSummary:
    mean: float
    p95: float
    max: float


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def summarize_repeats(values: Sequence[float]) -> RepeatSummary:
    if not values:
        raise ValueError("no values to summarise")
    level = mean(values)
    cv = stdev(values) / level if len(values) > 1 and level else None
    return RepeatSummary(
        n=len(values),
        median=float(median(values)),
        iqr=percentile(values, 75) - percentile(values, 25),
        cv=cv,
    )


def summarize_series(values: Sequence[float]) -> SeriesSummary:
    if not values:
        raise ValueError("no samples to summarise")
    return SeriesSummary(mean=float(mean(values)), p95=percentile(values, 95), max=float(max(values)))


def repeat_groups(rows: list[CellRow], metric: str) -> list[dict]:
    """One record per cell configuration (config hash) with `metric` summarised over its ok repeats."""
    groups: dict[str, list[CellRow]] = {}
    for row in rows:
        groups.setdefault(row.config_hash, []).append(row)
    records = []
    for group in groups.values():
        first = group[0]
        values = [row.metrics[metric] for row in group if row.status == CellStatus.OK and metric in row.metrics]
        summary = summarize_repeats(values) if values else None
        records.append(
            {
                "system": first.system,
                "framework": f"{first.framework}@{first.version}-{first.variant}",
                "workload": first.workload,
                "batch": first.batch_size,
                "options": ",".join(f"{k}={v}" for k, v in sorted((first.options or {}).items())),
                "ok": len(values),
                "repeats": len(group),
                "summary": summary,
            }
        )
    return records
