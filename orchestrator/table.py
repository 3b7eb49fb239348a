"""The seed Table 4 shape: one row per (system, workload, batch), img/s per framework, speed ratios.

Pure functions over stored cell rows, so the shape is tested without an engine.
"""

from __future__ import annotations

import re
from statistics import median
from typing import Optional

import pandas as pd

from orchestrator.result import TIMING_SUSPECT

SPEED = "train_img_per_s"
WARMUP = "warmup_seconds"
# How a result names its input placement (workloads.run.resolve_input): "input device (option)", ...
INPUT_NOTE = re.compile(r"^input (device|host) \(")
STATUS_TEXT = {
    "oom": "Out of Memory",
    "timeout": "Timeout",
    "error": "Error",
    "interrupted": "Interrupted",
    "retryable": "Retryable",
}


def framework_labels(rows: list[dict]) -> dict[int, str]:
    """Cell id → column label: the framework name, made longer only where a run has several builds."""
    builds: dict[str, set] = {}
    for row in rows:
        builds.setdefault(row["framework"], set()).add(_build(row))
    return {row["id"]: row["framework"] if len(builds[row["framework"]]) == 1 else _long_label(row) for row in rows}


def _build(row: dict) -> tuple:
    return row["version"], row["variant"], tuple(sorted((row["options"] or {}).items()))


def _long_label(row: dict) -> str:
    options = ",".join(f"{k}={v}" for k, v in sorted((row["options"] or {}).items()))
    return f"{row['framework']}@{row['version']}-{row['variant']}" + (f"[{options}]" if options else "")


def speed_table(rows: list[dict], reference: str) -> tuple[pd.DataFrame, list[str]]:
    """img/s (median over ok repeats) per framework column, then `X / reference` ratio columns.

    A cell group with no ok repeat shows its status (e.g. 'Out of Memory') instead of a number.
    Returns the table and footnotes (caps on samples, warm-up policy).
    """
    labels = framework_labels(rows)
    groups: dict[tuple, dict[str, list]] = {}
    for row in rows:
        key = (row["system"], row["workload"], row["batch_size"])
        groups.setdefault(key, {}).setdefault(labels[row["id"]], []).append(row)
    columns = list(dict.fromkeys(labels[row["id"]] for row in rows))
    reference_column = _reference_column(columns, reference)
    records = []
    for (system, workload, batch), by_label in groups.items():
        record: dict = {"system": system, "workload": workload, "batch": batch}
        speeds: dict[str, Optional[float]] = {}
        for label in columns:
            cells = by_label.get(label, [])
            ok = [c["metrics"][SPEED] for c in cells if c["status"] == "ok" and SPEED in c["metrics"]]
            speeds[label] = median(ok) if ok else None
            record[f"{label} (img/s)"] = round(speeds[label], 1) if ok else _status_text(cells)
        for label in columns:
            if reference_column is None or label == reference_column:
                continue
            base, value = speeds[reference_column], speeds[label]
            record[f"{label} / {reference_column}"] = f"{value / base:.0%}" if base and value else "--"
        records.append(record)
    table = pd.DataFrame.from_records(records)
    return table, _footnotes(rows, reference, reference_column)


def _reference_column(columns: list[str], reference: str) -> Optional[str]:
    for label in columns:
        if label == reference or label.startswith(f"{reference}@"):
            return label
    return None


def _status_text(cells: list[dict]) -> str:
    if not cells:
        return "--"
    statuses = {c["status"] for c in cells}
    return " / ".join(STATUS_TEXT.get(status, status) for status in sorted(statuses))


def input_placement(row: dict) -> Optional[str]:
    """`device` or `host`: where the cell's batches came from, as its result says (None before results said)."""
    found = (INPUT_NOTE.match(note) for note in row["notes"] or [])
    return next((match.group(1) for match in found if match), None)


def _footnotes(rows: list[dict], reference: str, reference_column: Optional[str]) -> list[str]:
    notes = []
    if reference_column is None:
        notes.append(f"reference framework '{reference}' is not in this run: no speed ratios")
    else:
        notes.append(f"speed ratio = framework img/s / {reference_column} img/s (seed Table 4)")
    notes.append(
        "img/s = median over ok repeats of training steps only, timed after an untimed warm-up of every batch "
        "shape, the device synchronised once per window of steps"
    )
    placements: dict[str, set[str]] = {}
    for row in rows:
        if row["status"] == "ok" and input_placement(row):
            placements.setdefault(input_placement(row), set()).add(row["framework"])
    if placements:
        said = [f"{where} ({', '.join(sorted(names))})" for where, names in sorted(placements.items())]
        notes.append("input: " + "; ".join(said))
    capped = sorted(
        {(r["workload"], c.split("capped at ")[1]) for r in rows for c in (r["notes"] or []) if "capped at" in c}
    )
    notes += [f"{workload}: capped at {cap}" for workload, cap in capped]
    notes += [_suspect_note(row) for row in rows if row["status"] == "ok" and row["metrics"].get(TIMING_SUSPECT)]
    return notes


def _suspect_note(row: dict) -> str:
    prefix = "timing-suspect: "
    reasons = [note.removeprefix(prefix) for note in row["notes"] or [] if note.startswith(prefix)]
    where = f"{row['system']}/{row['workload']}/bs{row['batch_size']} {row['framework']} repeat {row['repeat']}"
    return f"TIMING-SUSPECT {where}: {'; '.join(reasons) or 'see the cell notes'}"
