"""The seed Table 4 shape: one row per (system, workload, batch), img/s per framework, speed ratios.

Pure functions over stored cell rows, so the shape is tested without an engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from statistics import median
from typing import Optional

import pandas as pd

from orchestrator.backends.interference import DISTURBED_PREFIX
from orchestrator.metrics import DISTURBED, SPEED, TIMING_SUSPECT
from orchestrator.status import CellStatus
from orchestrator.store.rows import CellRow
from workloads.contract import TIMING_SUSPECT_PREFIX
from workloads.datasets.provenance import Kind
from workloads.ops import NO_DATASET

# How a result names its input placement (workloads.run.resolve_input): "input device (option)", ...
INPUT_NOTE = re.compile(r"^input (device|host) \(")
# Versions every cell reports beside its framework's own packages.
NOT_FRAMEWORK = ("python", "numpy")
FEW_REPEATS = 3  # fewer ok repeats than this give no spread worth citing


def framework_labels(rows: list[CellRow]) -> dict[int, str]:
    """Cell id → column label: the framework name, made longer only where a run has several builds."""
    builds: dict[str, set] = {}
    for row in rows:
        builds.setdefault(row.framework, set()).add(_build(row))
    return {row.id: row.framework if len(builds[row.framework]) == 1 else _long_label(row) for row in rows}


def _build(row: CellRow) -> tuple:
    return row.version, row.variant, tuple(sorted((row.options or {}).items()))


def _long_label(row: CellRow) -> str:
    options = ",".join(f"{k}={v}" for k, v in sorted((row.options or {}).items()))
    return f"{row.framework}@{row.version}-{row.variant}" + (f"[{options}]" if options else "")


@dataclass(frozen=True)
class SpeedEntry:
    """One framework's figure in a (system, workload, batch) group: the stacked form of Table 4."""

    system: str
    workload: str
    batch: int
    label: str
    img_per_s: Optional[float]  # median over ok repeats; None: `text` says why
    text: str  # the figure as shown ('14,287.9'), or the status ('Out of Memory') or '--'
    ratio: Optional[str]  # '164%' or '--' against the reference; None for the reference itself or with none
    n: int  # ok repeats behind the median


def speed_entries(rows: list[CellRow], reference: str) -> tuple[list[SpeedEntry], Optional[str]]:
    """Table 4's figures one per (group, framework), and the reference column they divide by."""
    labels = framework_labels(rows)
    groups: dict[tuple, dict[str, list]] = {}
    for row in rows:
        key = (row.system, row.workload, row.batch_size)
        groups.setdefault(key, {}).setdefault(labels[row.id], []).append(row)
    columns = list(dict.fromkeys(labels[row.id] for row in rows))
    reference_column = reference_label(columns, reference)
    entries = []
    for (system, workload, batch), by_label in groups.items():
        speeds: dict[str, list[float]] = {
            label: [
                c.metrics[SPEED]
                for c in by_label.get(label, [])
                if c.status == CellStatus.OK and SPEED in c.metrics
            ]
            for label in columns
        }
        base = median(speeds[reference_column]) if reference_column and speeds[reference_column] else None
        for label in columns:
            value = median(speeds[label]) if speeds[label] else None
            ratio = None
            if reference_column is not None and label != reference_column:
                ratio = f"{value / base:.0%}" if base and value else "--"
            text = f"{value:,.1f}" if value is not None else _status_text(by_label.get(label, []))
            entries.append(SpeedEntry(system, workload, batch, label, value, text, ratio, len(speeds[label])))
    return entries, reference_column


def speed_table(rows: list[CellRow], reference: str) -> tuple[pd.DataFrame, list[str]]:
    """img/s (median over ok repeats) per framework column, then `X / reference` ratio columns.

    A cell group with no ok repeat shows its status (e.g. 'Out of Memory') instead of a number;
    `n` is the ok repeats behind each group's medians (a range where frameworks differ).
    Returns the table and footnotes (versions, data, repeats, caps on samples, warm-up policy).
    """
    entries, reference_column = speed_entries(rows, reference)
    groups: dict[tuple, list[SpeedEntry]] = {}
    for entry in entries:
        groups.setdefault((entry.system, entry.workload, entry.batch), []).append(entry)
    records = []
    for (system, workload, batch), group in groups.items():
        record: dict = {"system": system, "workload": workload, "batch": batch, "n": n_range([e.n for e in group])}
        record.update(
            {f"{e.label} (img/s)": round(e.img_per_s, 1) if e.img_per_s is not None else e.text for e in group}
        )
        record.update({f"{e.label} / {reference_column}": e.ratio for e in group if e.ratio is not None})
        records.append(record)
    return pd.DataFrame.from_records(records), _footnotes(rows, reference, reference_column, entries)


def n_range(counts: list[int]) -> str:
    """Ok repeats of a group's frameworks: '3', or '1–3' where they differ (frameworks with none left out)."""
    measured = [count for count in counts if count] or [0]
    low, high = min(measured), max(measured)
    return str(low) if low == high else f"{low}–{high}"


def reference_label(columns: list[str], reference: str) -> Optional[str]:
    for label in columns:
        if label == reference or label.startswith(f"{reference}@"):
            return label
    return None


def _status_text(cells: list[CellRow]) -> str:
    if not cells:
        return "--"
    statuses = {c.status for c in cells}
    return " / ".join(CellStatus(status).text for status in sorted(statuses))


def input_placement(row: CellRow) -> Optional[str]:
    """`device` or `host`: where the cell's batches came from, as its result says (None before results said)."""
    found = (INPUT_NOTE.match(note) for note in row.notes or [])
    return next((match.group(1) for match in found if match), None)


def framework_versions(row: CellRow) -> str:
    """The framework's packages as the cell's container reported them ('tensorflow 2.16.1, keras 3.3.3')."""
    found = {k: v for k, v in (row.versions or {}).items() if k not in NOT_FRAMEWORK}
    return ", ".join(f"{package} {version}" for package, version in sorted(found.items()))


def label_versions(rows: list[CellRow], labels: dict[int, str]) -> dict[str, str]:
    """Column label → the in-container versions of its cells (several, joined by ' / ', if they differ)."""
    seen: dict[str, list[str]] = {}
    for row in rows:
        texts = seen.setdefault(labels[row.id], [])
        text = framework_versions(row)
        if text and text not in texts:
            texts.append(text)
    return {label: " / ".join(texts) or "not reported (no cell ended ok)" for label, texts in seen.items()}


def accuracy_meaningless(row: CellRow) -> bool:
    """Accuracy on generated data says nothing about the dataset it imitates."""
    return (row.data_provenance or {}).get("kind") == Kind.GENERATED.value


def data_text(row: CellRow) -> str:
    """The cell's dataset and where its data came from, in words a table or figure can carry."""
    found, dataset = row.data_provenance, row.dataset
    if not found:
        return f"{dataset}, provenance not recorded"
    if found.get("kind") == Kind.GENERATED.value:
        size = f", n {found['n']:,}" if found.get("n") else ""
        return f"{dataset}, generated (seed {found.get('seed')}{size}): accuracy meaningless"
    if found.get("kind") == Kind.OFFICIAL.value:
        return f"{dataset}, official (sha256 verified: {', '.join(sorted(found.get('verified') or {}))})"
    why = f": {found['note']}" if found.get("note") else ""
    return f"{dataset}, user (unverified, files' sha256 stored{why})"


def data_notes(rows: list[CellRow]) -> list[str]:
    """One line per dataset and provenance in the rows; cells without one (failed, older) only where
    no cell of that dataset has one."""
    used = [row for row in rows if row.dataset != NO_DATASET]
    recorded = {row.dataset for row in used if row.data_provenance}
    texts = [data_text(row) for row in used if row.data_provenance or row.dataset not in recorded]
    return [f"data: {text}" for text in dict.fromkeys(texts)]


def repeats_note(entries: list[SpeedEntry]) -> Optional[str]:
    """Call out the medians of fewer than FEW_REPEATS ok repeats: single measurements, no spread."""
    few = [entry for entry in entries if 0 < entry.n < FEW_REPEATS]
    if not few:
        return None
    if len(few) == len([entry for entry in entries if entry.n]):
        counts = n_range([entry.n for entry in few])
        return (
            f"n < {FEW_REPEATS} everywhere (n = {counts}): each figure is one or two measurements, no spread; "
            f"run with --repeats {FEW_REPEATS} or more to cite one"
        )
    listed = ", ".join(f"{e.system}/{e.workload}/bs{e.batch} {e.label} n={e.n}" for e in few)
    return f"n < {FEW_REPEATS} (one or two measurements, no spread): {listed}"


def _footnotes(
    rows: list[CellRow], reference: str, reference_column: Optional[str], entries: list[SpeedEntry]
) -> list[str]:
    notes = []
    if reference_column is None:
        notes.append(f"reference framework '{reference}' is not in this run: no speed ratios")
    else:
        notes.append(f"speed ratio = framework img/s / {reference_column} img/s (seed Table 4)")
    notes.append(
        "img/s = median over the n ok repeats of training steps only, timed after an untimed warm-up of every "
        "batch shape, the device synchronised once per window of steps"
    )
    few = repeats_note(entries)
    notes += [few] if few else []
    versions = label_versions(rows, framework_labels(rows))
    notes += [f"version in the container: {label} = {text}" for label, text in versions.items()]
    notes += data_notes(rows)
    placements: dict[str, set[str]] = {}
    for row in rows:
        if row.status == CellStatus.OK and (where := input_placement(row)):
            placements.setdefault(where, set()).add(row.framework)
    if placements:
        said = [f"{where} ({', '.join(sorted(names))})" for where, names in sorted(placements.items())]
        notes.append("input: " + "; ".join(said))
    notes += [f"{workload}: {cap}" for workload, cap in capped(rows).items()]
    notes += [flag_note(row, flag) for flag in FLAGS for row in rows if flagged(row, flag)]
    return notes


def capped(rows: list[CellRow]) -> dict[str, str]:
    """Workload → 'capped at N training samples per epoch', for the workloads whose cells said so
    (the note starts so; other notes that speak of caps, e.g. on evaluation splits, do not count)."""
    found = sorted(
        {
            (r.workload, c.removeprefix("capped at "))
            for r in rows
            for c in (r.notes or [])
            if c.startswith("capped at ")
        }
    )
    return {workload: f"capped at {cap}" for workload, cap in found}


@dataclass(frozen=True)
class Flag:
    """A stored 0/1 metric that makes an ok cell's number doubtful, and the prefix of its notes' reasons."""

    metric: str
    prefix: str
    title: str


# The workload's self-check distrusts its clock; the host saw other work (or a throttled GPU) beside it.
FLAGS = (Flag(TIMING_SUSPECT, TIMING_SUSPECT_PREFIX, "TIMING-SUSPECT"), Flag(DISTURBED, DISTURBED_PREFIX, "DISTURBED"))


def flagged(row: CellRow, flag: Flag) -> bool:
    return row.status == CellStatus.OK and bool(row.metrics.get(flag.metric))


def flag_reasons(row: CellRow, flag: Flag) -> str:
    """The flag's reasons from the cell's notes, '; '-joined ('' where none)."""
    return "; ".join(note.removeprefix(flag.prefix) for note in row.notes or [] if note.startswith(flag.prefix))


def flag_note(row: CellRow, flag: Flag) -> str:
    where = f"{row.system}/{row.workload}/bs{row.batch_size} {row.framework} repeat {row.repeat}"
    return f"{flag.title} {where}: {flag_reasons(row, flag) or 'see the cell notes'}"
