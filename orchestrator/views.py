"""Terminal and file views of plans and stored results (rich tables, CSV, JSON, Parquet)."""

from __future__ import annotations

import csv
import json
import sys
from typing import BinaryIO, TextIO

import pandas as pd
from rich.console import Console
from rich.table import Table

from orchestrator.devices import describe_request, global_batch, planned_device_ids
from orchestrator.errors import UsageError
from orchestrator.plan import Cell
from orchestrator.store import Store
from orchestrator.summary import repeat_groups
from orchestrator.table import SPEED, speed_table


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
    run = store.run_row(run_id)
    frame, notes = speed_table(store.cell_rows(run_id), reference or run["reference"])
    table = Table(title=f"Training speed — run {run_id}")
    for column in frame.columns:
        table.add_column(str(column), justify="right" if column not in ("system", "workload") else "left")
    for record in frame.itertuples(index=False):
        table.add_row(*[_fmt(value) for value in record])
    console.print(table)
    for note in notes:
        console.print(f"  · {note}", highlight=False)


def _fmt(value: object) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


def print_cells(console: Console, store: Store, run_id: str) -> None:
    table = Table(title="Cells")
    for column in ("status", "system", "framework", "workload", "batch", "repeat", "img/s", "notes"):
        table.add_column(column)
    for row in store.cell_rows(run_id):
        speed = row["metrics"].get(SPEED)
        table.add_row(
            row["status"],
            row["system"],
            f"{row['framework']}@{row['version']}-{row['variant']}",
            row["workload"],
            str(row["batch_size"]),
            str(row["repeat"]),
            f"{speed:,.0f}" if speed else "--",
            "; ".join(row["notes"] or []),
        )
    console.print(table)


def print_repeat_summary(console: Console, store: Store, run_id: str) -> None:
    """Median, IQR and coefficient of variation of img/s over each configuration's ok repeats."""
    groups = repeat_groups(store.cell_rows(run_id), SPEED)
    if all(group["repeats"] < 2 for group in groups):
        return  # one repeat per configuration: nothing to summarise
    table = Table(title="Repeats — training img/s")
    for column in ("system", "framework", "workload", "batch", "options", "ok", "median", "IQR", "CV"):
        table.add_column(column, justify="right" if column in ("median", "IQR", "CV") else "left")
    for group in groups:
        summary = group["summary"]
        figures = ["--", "--", "--"]
        if summary is not None:
            cv = f"{summary.cv:.1%}" if summary.cv is not None else "--"
            figures = [f"{summary.median:,.1f}", f"{summary.iqr:,.1f}", cv]
        ok = f"{group['ok']}/{group['repeats']}"
        identity = (str(group[key]) for key in ("system", "framework", "workload", "batch", "options"))
        table.add_row(*identity, ok, *figures)
    console.print(table)
    console.print(
        "  · over ok repeats: CV = sample standard deviation / mean; IQR = 75th − 25th percentile", highlight=False
    )


def flat_rows(store: Store, run_id: str) -> list[dict]:
    """One flat record per cell: identity, status, run/host context, the versions seen inside the
    container (`versions.<package>` columns) and every metric as a column."""
    run = store.run_row(run_id)
    host = json.loads(run["host"])
    flat = []
    for row in store.cell_rows(run_id):
        record = {
            "run_id": run_id,
            "host": host.get("hostname"),
            "cell_id": row["id"],
            "status": row["status"],
            "system": row["system"],
            "framework": row["framework"],
            "version": row["version"],
            "variant": row["variant"],
            "workload": row["workload"],
            "model": row["model"],
            "dataset": row["dataset"],
            "batch_size": row["batch_size"],
            "epochs": row["epochs"],
            "repeat": row["repeat"],
            "options": json.dumps(row["options"], sort_keys=True),
            "image": row["image"],
            "image_id": row["image_id"],
            "exit_code": row["exit_code"],
            "versions": json.dumps(row["versions"], sort_keys=True),
            "config_hash": row["config_hash"],
            "started_at": row["started_at"].isoformat(),
            "finished_at": row["finished_at"].isoformat(),
        }
        record.update({f"versions.{package}": version for package, version in sorted((row["versions"] or {}).items())})
        record.update(row["metrics"])
        flat.append(record)
    return flat


def write_cells(out: TextIO, store: Store, run_id: str, fmt: str) -> None:
    rows = flat_rows(store, run_id)
    if fmt == "parquet":
        _write_parquet(rows, out.buffer if hasattr(out, "buffer") else out)
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
