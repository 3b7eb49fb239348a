"""`report`: one run as a self-contained HTML page (plots embedded as PNG), PNG files and a
`summary.md` for CI logs.

The tables reuse the seed Table 4 shape from `table.speed_table`; repeats are shown as medians
with their spread (CV in the tables, min–max error bars in the plots) and their n. A cell that did
not end ok shows its status wherever its number would be. Every table and figure names the
frameworks' in-container versions and the data with its provenance, so each can be cited alone.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from orchestrator.analysis.stats import summarize
from orchestrator.metrics import (
    ACCURACY,
    ENERGY,
    EPOCH_TIME,
    IMG_PER_JOULE,
    METRICS,
    SPEED,
    WARMUP,
    one_decimal,
)
from orchestrator.render import markdown, plots
from orchestrator.render.table import (
    FLAGS,
    accuracy_meaningless,
    capped,
    data_notes,
    data_text,
    framework_labels,
    framework_versions,
    label_versions,
    reference_label,
    speed_table,
)
from orchestrator.status import CellStatus
from orchestrator.store.database import Store
from orchestrator.store.rows import CellRow, RunRow
from workloads.ops import parse_metric_name

# The report's tables of these metrics, titled by the registry's labels.
GPU_METRICS = {METRICS[name].label: name for name in ("gpu_util_pct_mean", "gpu_mem_used_mb_max")}
ENERGY_METRICS = {METRICS[name].label: name for name in (ENERGY, IMG_PER_JOULE)}
GROUP = ["system", "gpus", "workload", "batch", "epochs", "label"]


@dataclass(frozen=True)
class Report:
    run_id: str
    run: RunRow
    tables: dict[str, pd.DataFrame]  # title → table
    notes: list[str]
    figures: list[plots.Plot]
    context: plots.Context  # versions and data, named at the top of the page and under each figure
    hosts: tuple[dict, ...] = ()  # the machines that ran the cells (machines()); none stored: the run's host


def machines(rows: list[CellRow]) -> tuple[dict, ...]:
    """Each machine that ran a cell, once (a Slurm run: its nodes); none for cells stored before schema 5."""
    found = {(row.host.get("slurm_node"), row.host.get("hostname")): row.host for row in rows if row.host}
    return tuple(found.values())


def by_system(rows: list[CellRow]) -> dict[str, list[CellRow]]:
    found: dict[str, list[CellRow]] = {}
    for row in rows:
        found.setdefault(row.system, []).append(row)
    return found


def report_labels(rows: list[CellRow]) -> dict[int, str]:
    """Cell id → framework label, made per system, so a run over CPU and GPU systems still says
    'tensorflow' rather than 'tensorflow@2.21.0-gpu' where each system has one build of it."""
    return {cell_id: label for group in by_system(rows).values() for cell_id, label in framework_labels(group).items()}


def cell_frame(rows: list[CellRow]) -> pd.DataFrame:
    """One row per stored cell: its group identity, status, versions, data and every metric as a column."""
    labels = report_labels(rows)
    records = [
        {
            "label": labels[row.id],
            "system": row.system,
            "gpus": int((row.config or {}).get("gpus") or 0),
            "workload": row.workload,
            "batch": row.batch_size,
            "epochs": row.epochs,
            "repeat": row.repeat,
            "status": row.status,
            "exit_code": row.exit_code,
            "log_tail": row.log_tail,
            "versions": framework_versions(row),
            "data": data_text(row) if row.data_provenance else "",  # failed cells report none
            **row.metrics,
        }
        for row in rows
    ]
    return pd.DataFrame.from_records(records)


def summaries(cells: pd.DataFrame, metric: str, keys: list[str] = GROUP) -> pd.DataFrame:
    """Per group: the metric's median and spread over ok repeats, how many were ok, and the status
    text ('Out of Memory', ...) of a group with none."""
    columns = [*keys, "n", "repeats", "median", "q1", "q3", "low", "high", "cv", "status_text", "flagged"]
    if cells.empty:
        return pd.DataFrame(columns=columns)
    if metric not in cells:  # e.g. a run whose cells all failed: their statuses still show
        cells = cells.assign(**{metric: float("nan")})
    records = []
    for key, group in cells.groupby(keys, sort=False, dropna=False):
        ok = group[(group["status"] == CellStatus.OK) & group[metric].notna()]
        statuses = sorted(set(group["status"]) - {CellStatus.OK})
        if ok.empty and not statuses:
            continue  # the metric is not one this group measures
        summary = summarize(ok[metric].tolist())
        spread = (
            {f: getattr(summary, f) for f in ("n", "median", "q1", "q3", "low", "high", "cv")}
            if summary
            else {"n": 0, **dict.fromkeys(("median", "q1", "q3", "low", "high", "cv"))}
        )
        text = " / ".join(CellStatus(s).text for s in statuses)
        record = {**dict(zip(keys, key)), **spread, "repeats": len(group), "status_text": text}
        records.append({**record, "flagged": flagged_repeats(ok)})
    return pd.DataFrame.from_records(records, columns=columns)


def flagged_repeats(ok: pd.DataFrame) -> int:
    """Ok repeats whose number is doubtful: disturbed, or timing-suspect (`table.FLAGS`)."""
    metrics = [flag.metric for flag in FLAGS if flag.metric in ok]
    return int((ok[metrics].fillna(0) > 0).any(axis=1).sum()) if metrics else 0


def repeats_table(
    speed: pd.DataFrame, warmup: Optional[pd.DataFrame] = None, cells: Optional[pd.DataFrame] = None
) -> pd.DataFrame:
    """The repeats behind Table 4: ok/total, median, min–max and CV per framework and group, the
    median warm-up (compilation) seconds each paid before its first timed step, and (from `cells`)
    the in-container versions and the data each group ran on."""
    groups = list(zip(speed["system"], speed["workload"], speed["batch"], speed["epochs"]))
    first_seen = {group: index for index, group in enumerate(dict.fromkeys(groups))}
    speed = speed.iloc[sorted(range(len(groups)), key=lambda i: first_seen[groups[i]])]
    warm = {} if warmup is None else dict(zip(map(tuple, warmup[GROUP].values.tolist()), warmup["median"]))
    table = pd.DataFrame(
        {
            "system": speed["system"],
            "workload": speed["workload"],
            "batch": speed["batch"],
            "epochs": speed["epochs"],
            "framework": speed["label"],
            "ok / repeats": [f"{n:.0f} / {r}" for n, r in zip(speed["n"], speed["repeats"])],
            "median img/s": [f"{m:,.1f}" if pd.notna(m) else "--" for m in speed["median"]],
            "min – max": [
                f"{lo:,.1f} – {hi:,.1f}" if pd.notna(lo) else "--" for lo, hi in zip(speed["low"], speed["high"])
            ],
            "CV": [f"{cv:.1%}" if pd.notna(cv) else "--" for cv in speed["cv"]],
            "not ok": speed["status_text"],
        }
    )
    if warm:
        seconds = [warm.get(tuple(key)) for key in speed[GROUP].values.tolist()]
        table.insert(len(table.columns) - 1, "warm-up s", [f"{s:,.2f}" if pd.notna(s) else "--" for s in seconds])
    if cells is not None and not cells.empty:
        for column in ("versions", "data"):
            found = _group_texts(cells, column)
            table[column] = [found.get(tuple(key), "--") for key in speed[GROUP].values.tolist()]
    return table


def _group_texts(cells: pd.DataFrame, column: str) -> dict[tuple, str]:
    """Per group: the distinct non-empty texts of `column` over its cells, joined by ' / '."""
    found: dict[tuple, list[str]] = {}
    for key, text in zip(map(tuple, cells[GROUP].values.tolist()), cells[column]):
        texts = found.setdefault(key, [])
        if text and text not in texts:
            texts.append(text)
    return {key: " / ".join(texts) for key, texts in found.items() if texts}


def energy_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Energy and images per joule over the timed training window, per framework and group (GPU cells)."""
    frames = {title: summaries(cells, metric) for title, metric in ENERGY_METRICS.items() if metric in cells}
    if len(frames) < len(ENERGY_METRICS):
        return pd.DataFrame()
    joules, per_joule = frames["energy J"], frames["img/J"]
    measured = joules["median"].notna()
    return pd.DataFrame(
        {
            "system": joules["system"][measured],
            "workload": joules["workload"][measured],
            "batch": joules["batch"][measured],
            "framework": joules["label"][measured],
            "n": joules["n"][measured].astype(int),
            "median energy J": [f"{v:,.0f}" for v in joules["median"][measured]],
            "median img/J": [f"{v:,.2f}" for v in per_joule["median"][measured]],
        }
    )


def failures_table(cells: pd.DataFrame) -> pd.DataFrame:
    failed = cells[cells["status"] != CellStatus.OK]
    return pd.DataFrame(
        {
            "status": [CellStatus(s).text for s in failed["status"]],
            "system": failed["system"],
            "framework": failed["label"],
            "workload": failed["workload"],
            "batch": failed["batch"],
            "repeat": failed["repeat"],
            "exit code": failed["exit_code"].astype("Int64"),
            "last log line": [_last_line(tail) for tail in failed["log_tail"]],
        }
    )


def _last_line(tail: Optional[str]) -> str:
    lines = [line.strip() for line in (tail or "").splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def scaling_table(speed: pd.DataFrame) -> pd.DataFrame:
    """img/s per GPU count and efficiency against 1 GPU, where the run has 1 GPU and more; groups
    that did not end ok stay in with their status and no efficiency."""
    gpu = speed[speed["gpus"] >= 1]
    measured = gpu[gpu["median"].notna()]
    if measured["gpus"].nunique() < 2 or 1 not in set(measured["gpus"]):
        return pd.DataFrame()
    single = measured[measured["gpus"] == 1].set_index(["workload", "batch", "label"])["median"]
    table = gpu.copy()
    base = [single.get((w, b, lbl)) for w, b, lbl in zip(table["workload"], table["batch"], table["label"])]
    table["efficiency"] = [
        m / (g * s) if s and pd.notna(m) else None for m, g, s in zip(table["median"], table["gpus"], base)
    ]
    return table


def ops_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Median and range of each `op_<op>_n<size>` metric (seconds) per framework over ok repeats."""
    names = {name: found for name in cells.columns if (found := parse_metric_name(str(name)))}
    if not names:
        return pd.DataFrame()
    grouped = cells[cells["status"] == CellStatus.OK].groupby("label", sort=False)[list(names)]
    stats = {"median": grouped.median(), "low": grouped.min(), "high": grouped.max()}
    records = [
        {
            "op": found[0],
            "size": found[1],
            "label": label,
            **{k: v.at[label, name] for k, v in stats.items()},
        }
        for name, found in names.items()
        for label in stats["median"].index
    ]
    return pd.DataFrame.from_records(records).dropna(subset=["median"])


def ratio_table(speed: pd.DataFrame, cells: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per group, each framework's median img/s ÷ the reference build's (the table's ratio), with the
    lowest and highest ratio of repeats paired by repeat number, and n such pairs. A framework with
    no ok repeat keeps its status; a group without a reference figure has no ratios."""
    columns = [*GROUP, "n", "median", "low", "high", "status_text"]
    keys = GROUP[:-1]
    if speed.empty or SPEED not in cells:  # e.g. a run whose cells all failed
        return pd.DataFrame(columns=columns)
    ok = dict(list(cells[(cells["status"] == CellStatus.OK) & cells[SPEED].notna()].groupby(keys, sort=False)))
    records = []
    for key, group in speed.groupby(keys, sort=False):
        base_label = reference_label(list(group["label"]), reference)
        base = group[group["label"] == base_label]["median"]
        if base_label is None or base.isna().all():
            continue
        by_repeat = ok[key].pivot_table(index="repeat", columns="label", values=SPEED, aggfunc="first")
        for row in group[group["label"] != base_label].itertuples(index=False):
            none = pd.Series(dtype=float)
            paired = (by_repeat[row.label] / by_repeat[base_label]).dropna() if row.label in by_repeat else none
            ratio = row.median / base.iloc[0]
            spread = (paired.min(), paired.max()) if len(paired) > 1 else (ratio, ratio)
            records.append(
                {
                    **dict(zip(keys, key)),
                    "label": row.label,
                    "n": len(paired),
                    "median": ratio,
                    "low": min(spread[0], ratio),
                    "high": max(spread[1], ratio),
                    "status_text": row.status_text,
                }
            )
    return pd.DataFrame.from_records(records, columns=columns)


def figure_context(rows: list[CellRow]) -> plots.Context:
    """What the figures name: each label's in-container versions, the data, caps, generated workloads."""
    generated = {row.workload for row in rows if accuracy_meaningless(row)}
    return plots.Context(
        label_versions(rows, report_labels(rows)), data_notes(rows), capped(rows), frozenset(generated)
    )


def table4_by_system(rows: list[CellRow], reference: str) -> tuple[pd.DataFrame, list[str]]:
    """`table.speed_table` per system (each system's builds, ratios to its own reference build),
    stacked into one table."""
    tables, notes = [], []
    for system_rows in by_system(rows).values():
        table, system_notes = speed_table(system_rows, reference)
        tables.append(table)
        notes += [note for note in system_notes if note not in notes]
    return (pd.concat(tables, ignore_index=True).fillna("--") if tables else pd.DataFrame()), notes


def build(store: Store, run_id: str, reference: Optional[str] = None) -> Report:
    run = store.run_row(run_id)
    rows = store.cell_rows(run_id)
    reference = reference or run.reference
    table4, notes = table4_by_system(rows, reference)
    cells = cell_frame(rows)
    speed = summaries(cells, SPEED)
    labels = list(dict.fromkeys(cells["label"])) if not cells.empty else []
    palette = plots.colours(labels)
    gpu = {title: summaries(cells, metric) for title, metric in GPU_METRICS.items() if metric in cells}
    accuracy_metric = next((m for m in ACCURACY if m in cells), None)
    epoch_time = summaries(cells, EPOCH_TIME) if EPOCH_TIME in cells else pd.DataFrame()
    accuracy = summaries(cells, accuracy_metric) if accuracy_metric else pd.DataFrame()
    scaling = scaling_table(speed)
    context = figure_context(rows)
    figures = plots.draw_all(
        [
            (plots.throughput, (speed, palette, context)),
            (plots.ratios, (ratio_table(speed, cells, reference), palette, reference, context)),
            (plots.gpu_usage, (speed, gpu, palette, context)),
            (plots.epochs, (epoch_time, accuracy, palette, context)),
            (plots.scaling, (scaling, palette, context)),
            (plots.batch_sweep, (speed, palette, context)),
            (plots.ops, (ops_table(cells), palette, context)),
        ]
    )
    warmup = summaries(cells, WARMUP) if WARMUP in cells else None
    tables = {"Training speed (seed Table 4 shape)": table4, "Repeats": repeats_table(speed, warmup, cells)}
    energy = energy_table(cells) if not cells.empty else pd.DataFrame()
    if not energy.empty:
        tables["Energy over the timed training window (NVML)"] = energy
    if not scaling.empty:
        tables["Scaling from 1 GPU"] = pd.DataFrame(
            {
                "workload": scaling["workload"],
                "batch per GPU": scaling["batch"],
                "framework": scaling["label"],
                "GPUs": scaling["gpus"],
                "median img/s": [
                    f"{m:,.1f}" if pd.notna(m) else t for m, t in zip(scaling["median"], scaling["status_text"])
                ],
                "efficiency": [f"{e:.0%}" if pd.notna(e) else "--" for e in scaling["efficiency"]],
            }
        )
    failures = failures_table(cells) if not cells.empty else pd.DataFrame()
    if not failures.empty:
        tables["Cells that did not end ok"] = failures
    from orchestrator.analysis import history  # it builds on this module's summaries

    for found in history.for_run(store, rows):
        tables[f"History: {found.wanted.framework} across versions (every run in the store)"] = found.display()
        figures += found.figures
    return Report(run_id, run, tables, notes, figures, context, machines(rows))


def write(report: Report, out: Path) -> list[Path]:
    """index.html (self-contained), one PNG per figure, summary.md; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for figure in report.figures:
        path = out / f"{figure.name}.png"
        path.write_bytes(figure.png)
        written.append(path)
    (out / "summary.md").write_text(to_markdown(report))
    (out / "index.html").write_text(to_html(report))
    return [out / "index.html", out / "summary.md", *written]


def _host_facts(host: dict) -> list[tuple[str, str]]:
    gpus = ", ".join(g.get("name", "?") for g in host.get("gpus") or []) or "none"
    name = host.get("hostname", "?") + (f" (Slurm node {host['slurm_node']})" if host.get("slurm_node") else "")
    return [("host", f"{name}: {host.get('cpu_model', '?')}, {host.get('cores', '?')} cores"), ("GPUs", gpus)]


def _run_facts(report: Report) -> list[tuple[str, str]]:
    run = report.run
    hosts = report.hosts or (json.loads(run.host or "{}"),)
    return [
        ("run", report.run_id),
        ("spec", f"{run.spec_name} ({run.spec_path})"),
        ("status", run.status),
        ("started", str(run.started_at)),
        *[fact for host in hosts for fact in _host_facts(host)],
        ("tool", f"benchmatrix {run.tool_version}"),
        *[(f"{label} in the container", text) for label, text in report.context.versions.items()],
        *[("data", note.removeprefix("data: ")) for note in report.context.data],
    ]


def markdown_table(frame: pd.DataFrame) -> str:
    records = ([_cell_text(value) for value in record] for record in frame.itertuples(index=False))
    return markdown.table([str(column) for column in frame.columns], records)


def _cell_text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return "--"
    return one_decimal(value) if isinstance(value, float) else str(value)


def to_markdown(report: Report) -> str:
    parts = [f"# benchmatrix report — run {report.run_id}", ""]
    parts += [f"- **{key}**: {value}" for key, value in _run_facts(report)]
    for title, frame in report.tables.items():
        parts += ["", f"## {title}", "", markdown_table(frame)]
        if title.startswith("Training speed"):
            parts += [""] + [f"- {note}" for note in report.notes]
    if report.figures:
        parts += ["", "## Figures", ""] + [f"- `{f.name}.png`: {f.title} ({f.caption})" for f in report.figures]
    return "\n".join(parts) + "\n"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; } dt { font-weight: bold; }
"""


def to_html(report: Report) -> str:
    esc = html.escape
    body = [f"<h1>benchmatrix report — run {esc(report.run_id)}</h1>", "<dl>"]
    body += [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in _run_facts(report)]
    body.append("</dl>")
    for title, frame in report.tables.items():
        body += [f"<h2>{esc(title)}</h2>", frame.map(_cell_text).to_html(index=False, escape=True, border=0)]
        if title.startswith("Training speed"):
            body.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>")
    for figure in report.figures:
        data = base64.b64encode(figure.png).decode("ascii")
        body.append(
            f'<figure><h2>{esc(figure.title)}</h2><img alt="{esc(figure.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(figure.caption)}</figcaption></figure>"
        )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>benchmatrix run {esc(report.run_id)}'
        f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
