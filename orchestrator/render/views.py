"""Terminal and file views of plans and stored results (rich tables, CSV, JSON, Parquet)."""

from __future__ import annotations

import csv
import json
import sys
from typing import BinaryIO, TextIO

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from orchestrator.analysis.summary import repeat_groups
from orchestrator.errors import UsageError
from orchestrator.metrics import SPEED
from orchestrator.render.table import (
    FLAGS,
    SpeedEntry,
    accuracy_meaningless,
    flag_reasons,
    speed_entries,
    speed_table,
)
from orchestrator.run.devices import describe_request, global_batch, planned_device_ids
from orchestrator.run.plan import Cell
from orchestrator.store.database import Store
from orchestrator.store.rows import CellRow

UNBOUNDED = 100_000  # a width no table reaches: to measure one uncut
# For a narrow console: no outer edge, one column of space between columns.
COMPACT: dict = {"box": box.SIMPLE_HEAD, "show_edge": False, "padding": (0, 1, 0, 0)}


def print_plan(console: Console, cells: list[Cell]) -> None:
    table = Table(title=f"{len(cells)} cells")
    columns = ("system", "framework", "image", "workload", "batch", "global batch", "devices", "epochs", "options")
    for column in (*columns, "repeat", "hash"):
        table.add_column(column)
    for cell in cells:
        options = ",".join(f"{k}={v}" for k, v in cell.options)
        devices = f" gpus={cell.gpus}" if cell.gpus else ""
        table.add_row(
            cell.system + devices,
            f"{cell.framework}@{cell.version}",
            cell.image,
            cell.workload,
            str(cell.batch_size),
            str(global_batch(cell)),
            describe_request(planned_device_ids(cell)) or "--",
            str(cell.epochs),
            options,
            str(cell.repeat),
            cell.config_hash,
        )
    console.print(table)
    if any(cell.gpus for cell in cells):
        console.print(
            "  · batch is per GPU: global batch = batch × GPUs; a cell with several GPUs trains one "
            "data-parallel replica per GPU (workload --replicas N)",
            highlight=False,
        )


def print_speed_table(console: Console, store: Store, run_id: str, reference: str | None) -> None:
    """Table 4 as it is (one column per framework) where the console has room, else stacked (one row
    per framework) so that no figure is cut; the footnotes name versions, data and repeats either way."""
    run = store.run_row(run_id)
    rows = store.cell_rows(run_id)
    frame, notes = speed_table(rows, reference or run.reference)
    title = f"Training speed — run {run_id}"
    wide = _wide_table(frame, title)
    if _natural_width(console, wide) <= console.width:
        console.print(wide)
    else:
        console.print(_stacked_table(*speed_entries(rows, reference or run.reference), title))
    for note in notes:
        console.print(f"  · {note}", highlight=False)


def _natural_width(console: Console, table: Table) -> int:
    """Columns the table takes uncut (`Console.measure` alone caps it at the console's width)."""
    return console.measure(table, options=console.options.update_width(UNBOUNDED)).maximum


def _wide_table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="left" if column in ("system", "workload") else "right")
    for record in frame.itertuples(index=False):
        table.add_row(*[_fmt(value) for value in record])
    return table


def _stacked_table(entries: list[SpeedEntry], reference: str | None, title: str) -> Table:
    """One row per (group, framework), the group named on its first row only: narrow whatever the frameworks."""
    table = Table(title=title)
    for column in ("system", "workload", "batch", "framework"):
        table.add_column(column, overflow="fold")
    table.add_column("img/s", justify="right", no_wrap=True)
    if reference is not None:
        table.add_column("ratio", justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    groups = [(entry.system, entry.workload, entry.batch) for entry in entries]
    for index, entry in enumerate(entries):
        first = index == 0 or groups[index - 1] != groups[index]
        last = index + 1 == len(entries) or groups[index + 1] != groups[index]
        named = [entry.system, entry.workload, str(entry.batch)] if first else ["", "", ""]
        ratio = [entry.ratio or "ref"] if reference is not None else []
        table.add_row(*named, entry.label, entry.text, *ratio, str(entry.n), end_section=last)
    return table


def _fmt(value: object) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


def print_cells(console: Console, store: Store, run_id: str) -> None:
    """Every cell with its notes inline where the console has room, else numbered below the table
    (cells share most notes), so that numbers and short words are never folded."""
    rows = store.cell_rows(run_id)
    inline = _cells_table(rows, None)
    if _natural_width(console, inline) <= console.width:
        console.print(inline)
        return
    notes = list(dict.fromkeys(note for row in rows for note in row.notes or []))
    console.print(_cells_table(rows, {note: index for index, note in enumerate(notes, 1)}))
    for index, note in enumerate(notes, 1):
        console.print(f"  [{index}] {note}", highlight=False, markup=False)


def _cells_table(rows: list[CellRow], numbered: dict[str, int] | None) -> Table:
    """`numbered`: note → its number below the table, or None for the notes written out."""
    table = Table(title="Cells", **({} if numbered is None else COMPACT))
    for column in ("status", "system", "framework", "workload", "batch", "repeat", "img/s", "data", "notes"):
        folds = column in ("framework", "notes")
        table.add_column(column, justify="right" if column == "img/s" else "left", overflow="fold", no_wrap=not folds)
    for row in rows:
        speed = row.metrics.get(SPEED)
        notes = row.notes or []
        table.add_row(
            row.status,
            row.system,
            f"{row.framework}@{row.version}-{row.variant}",
            row.workload,
            str(row.batch_size),
            str(row.repeat),
            f"{speed:,.0f}" if speed else "--",
            (row.data_provenance or {}).get("kind", "--"),
            "; ".join(notes) if numbered is None else " ".join(str(numbered[note]) for note in notes),
        )
    return table


def print_repeat_summary(console: Console, store: Store, run_id: str) -> None:
    """Median, IQR and coefficient of variation of img/s over each configuration's ok repeats."""
    groups = repeat_groups(store.cell_rows(run_id), SPEED)
    if all(group["repeats"] < 2 for group in groups):
        return  # one repeat per configuration: nothing to summarise
    table = _repeats_table(groups, compact=False)
    if _natural_width(console, table) > console.width:
        table = _repeats_table(groups, compact=True)
    console.print(table)
    console.print(
        "  · over ok repeats: CV = sample standard deviation / mean; IQR = 75th − 25th percentile", highlight=False
    )


def _repeats_table(groups: list[dict], compact: bool) -> Table:
    table = Table(title="Repeats — training img/s", **(COMPACT if compact else {}))
    for column in ("system", "framework", "workload", "batch", "options", "ok"):
        table.add_column(column, overflow="fold", no_wrap=column not in ("framework", "options"))
    for column in ("median", "IQR", "CV"):
        table.add_column(column, justify="right", no_wrap=True)
    for group in groups:
        summary = group["summary"]
        figures = ["--", "--", "--"]
        if summary is not None:
            cv = f"{summary.cv:.1%}" if summary.cv is not None else "--"
            figures = [f"{summary.median:,.1f}", f"{summary.iqr:,.1f}", cv]
        ok = f"{group['ok']}/{group['repeats']}"
        identity = (str(group[key]) for key in ("system", "framework", "workload", "batch", "options"))
        table.add_row(*identity, ok, *figures)
    return table


def flat_rows(store: Store, run_id: str) -> list[dict]:
    """One flat record per cell: identity, status, run/host context, the versions seen inside the
    container (`versions.<package>` columns), where its data came from (`data_provenance`, and
    `accuracy_meaningful` false for generated data) and every metric as a column."""
    run = store.run_row(run_id)
    host = json.loads(run.host)
    flat = []
    for row in store.cell_rows(run_id):
        record = {
            "run_id": run_id,
            "host": (row.host or host).get("hostname"),  # the cell's machine (a Slurm node); older: the run's
            "cell_id": row.id,
            "status": row.status.value,
            "system": row.system,
            "framework": row.framework,
            "version": row.version,
            "variant": row.variant,
            "workload": row.workload,
            "model": row.model,
            "dataset": row.dataset,
            "batch_size": row.batch_size,
            "epochs": row.epochs,
            "repeat": row.repeat,
            "options": json.dumps(row.options, sort_keys=True),
            "image": row.image,
            "image_id": row.image_id,
            "exit_code": row.exit_code,
            "versions": json.dumps(row.versions, sort_keys=True),
            "data_provenance": json.dumps(row.data_provenance, sort_keys=True) if row.data_provenance else None,
            "data_provenance.kind": (row.data_provenance or {}).get("kind"),
            "accuracy_meaningful": not accuracy_meaningless(row),
            "config_hash": row.config_hash,
            "started_at": row.started_at.isoformat(),
            "finished_at": row.finished_at.isoformat(),
        }
        record.update({f"versions.{package}": version for package, version in sorted((row.versions or {}).items())})
        record.update(row.metrics)
        record.update({f"{flag.metric}_reason": flag_reasons(row, flag) or None for flag in FLAGS})
        flat.append(record)
    return flat


def write_cells(out: TextIO, store: Store, run_id: str, fmt: str) -> None:
    rows = flat_rows(store, run_id)
    if fmt == "parquet":
        _write_parquet(rows, out.buffer)  # stdout or a file opened as text: its bytes underneath
        return
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    fields = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)


def _write_parquet(rows: list[dict], out: BinaryIO) -> None:
    if out is sys.stdout.buffer and sys.stdout.isatty():
        raise UsageError("--format parquet writes binary: give --out FILE or redirect stdout to a file")
    pd.DataFrame.from_records(rows).to_parquet(out, engine="pyarrow", index=False)
