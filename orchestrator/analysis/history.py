"""`report --history FW[@LOW..HIGH]`: every stored measurement of a framework across its versions.

asv's per-commit graph for framework releases: per workload and system one chart, the versions in
release order on the x axis, per version the median training img/s over every ok repeat the store
holds with its spread (lowest to highest), one line per host (and per variant, batch size and
options where they differ), so a figure measured on another machine never poses as a change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional

import pandas as pd
from packaging.version import InvalidVersion, Version
from sqlalchemy import func, select

from orchestrator.errors import UsageError
from orchestrator.metrics import DISTURBED, SPEED
from orchestrator.render import plots
from orchestrator.render.report import summaries
from orchestrator.spec.validate import NAME, VERSION
from orchestrator.store.database import Store, cells, metrics, runs
from orchestrator.store.queries import closest_first
from orchestrator.store.rows import CellRow

SERIES = ["system", "workload", "series", "version"]


@dataclass(frozen=True)
class HistoryRange:
    """A framework and an inclusive range of its versions (either end open)."""

    framework: str
    low: Optional[str] = None
    high: Optional[str] = None

    @property
    def text(self) -> str:
        if self.low is None and self.high is None:
            return self.framework
        return f"{self.framework}@{self.low or ''}..{self.high or ''}"

    def holds(self, version: str) -> bool:
        key = version_key(version)
        return (self.low is None or version_key(self.low) <= key) and (
            self.high is None or key <= version_key(self.high)
        )


def parse_range(text: str) -> HistoryRange:
    """`FW`, `FW@LOW..HIGH`, `FW@LOW..` or `FW@..HIGH` (versions inclusive); `FW@V` is `FW@V..V`."""
    framework, at, rest = text.partition("@")
    low, dots, high = rest.partition("..")
    if not dots:
        high = low
    if (
        not re.fullmatch(NAME, framework)
        or (at and not rest)
        or any(end and not re.fullmatch(VERSION, end) for end in (low, high))
    ):
        raise UsageError(
            f"--history {text}: expected FRAMEWORK, FRAMEWORK@LOW..HIGH, FRAMEWORK@LOW.. or FRAMEWORK@..HIGH"
        )
    found = HistoryRange(framework, low or None, high or None)
    if found.low and found.high and version_key(found.low) > version_key(found.high):
        raise UsageError(f"--history {text}: {found.low} comes after {found.high}")
    return found


def version_key(version: str) -> tuple:
    """Release order (PEP 440: 1.10 after 1.9, 1.8.0.post0 after 1.8.0); unparsable versions last."""
    try:
        return (0, Version(version), version)
    except InvalidVersion:
        return (1, version)


def host_label(host_json: Optional[str]) -> str:
    """What tells two machines apart in a chart: name, CPU, cores, GPUs."""
    host = json.loads(host_json or "{}")
    gpus = ", ".join(dict.fromkeys(g.get("name", "?") for g in host.get("gpus") or []))
    cpu = f"{host.get('cpu_model', '?')}, {host.get('cores', '?')} cores"
    return f"{host.get('hostname', '?')} ({cpu}{'; ' + gpus if gpus else ''})"


def stored_cells(store: Store, framework: str, metric: str = SPEED) -> pd.DataFrame:
    """Every stored cell of `framework`, any status, with its run's host and the metric's value; a
    disturbed repeat (other work beside it) has no value: it enters no median, as in `compare`."""
    flags = metrics.alias("flags")
    query = (
        select(
            cells.c.run_id,
            cells.c.system,
            cells.c.version,
            cells.c.variant,
            cells.c.workload,
            cells.c.batch_size,
            cells.c.options,
            cells.c.status,
            func.coalesce(cells.c.host, runs.c.host).label("host"),  # the cell's machine; before schema 5 the run's
            metrics.c.value,
            flags.c.value.label("disturbed"),
        )
        .join_from(cells, runs, cells.c.run_id == runs.c.id)
        .outerjoin(metrics, (metrics.c.cell_id == cells.c.id) & (metrics.c.name == metric))
        .outerjoin(flags, (flags.c.cell_id == cells.c.id) & (flags.c.name == DISTURBED))
        .where(cells.c.framework == framework)
        .order_by(cells.c.id)
    )
    with store.engine.connect() as conn:
        found = pd.DataFrame.from_records(list(conn.execute(query).mappings()))
    if not found.empty:
        found.loc[found.pop("disturbed").fillna(0) > 0, "value"] = None
    return found


def history_table(stored: pd.DataFrame, wanted: HistoryRange, metric: str = SPEED) -> pd.DataFrame:
    """Per system, workload, series (host · variant · batch · options) and version: the median and
    spread of the ok repeats, in release order."""
    frame = stored[stored["version"].map(wanted.holds)].copy() if not stored.empty else stored
    if frame.empty:
        return pd.DataFrame(columns=[*SERIES, "n", "repeats", "median", "low", "high", "cv", "status_text", "runs"])
    frame["series"] = [
        " · ".join([host_label(host), variant, f"bs{batch}", *_options(options)])
        for host, variant, batch, options in zip(frame["host"], frame["variant"], frame["batch_size"], frame["options"])
    ]
    frame = frame.rename(columns={"value": metric})
    table = summaries(frame, metric, SERIES)
    run_counts = frame.groupby(SERIES)["run_id"].nunique().rename("runs").reset_index()
    table = table.merge(run_counts, on=SERIES, how="left")
    order = sorted(table["version"].unique(), key=version_key)
    table["version"] = pd.Categorical(table["version"], categories=order, ordered=True)
    return table.sort_values(["system", "workload", "series", "version"]).reset_index(drop=True)


def _options(options_json: Optional[str]) -> list[str]:
    options = json.loads(options_json or "{}")
    return [",".join(f"{k}={v}" for k, v in sorted(options.items()))] if options else []


@dataclass(frozen=True)
class History:
    wanted: HistoryRange
    table: pd.DataFrame
    figures: list[plots.Plot]

    def display(self) -> pd.DataFrame:
        """The table as the report prints it."""
        return pd.DataFrame(
            {
                "system": self.table["system"],
                "workload": self.table["workload"],
                "series (host · variant · batch · options)": self.table["series"],
                "version": self.table["version"].astype(str),
                "median img/s": [
                    f"{m:,.1f}" if pd.notna(m) else t for m, t in zip(self.table["median"], self.table["status_text"])
                ],
                "lowest–highest": [
                    f"{lo:,.1f}–{hi:,.1f}" if pd.notna(lo) else "--"
                    for lo, hi in zip(self.table["low"], self.table["high"])
                ],
                "CV": [f"{cv:.1%}" if pd.notna(cv) else "--" for cv in self.table["cv"]],
                "ok repeats": self.table["n"].astype(int),
                "of repeats": self.table["repeats"].astype(int),
                "not ok": self.table["status_text"].fillna(""),
                "runs": self.table["runs"].astype(int),
            }
        )


def build(store: Store, wanted: HistoryRange) -> History:
    """The history of `wanted`; a framework the store has never measured, or an empty range, is an error."""
    stored = stored_cells(store, wanted.framework)
    if stored.empty:
        with store.engine.connect() as conn:
            known = sorted(conn.execute(select(cells.c.framework).distinct()).scalars())
        raise UsageError(
            f"--history {wanted.text}: the store holds no cells of {wanted.framework}; "
            f"it holds {closest_first(wanted.framework, known)}"
        )
    table = history_table(stored, wanted)
    if table.empty:
        held = ", ".join(sorted(stored["version"].unique(), key=version_key))
        raise UsageError(f"--history {wanted.text}: no stored version in that range; stored versions: {held}")
    figures = [
        plots.history(group, wanted.framework, system, workload)
        for (system, workload), group in table.groupby(["system", "workload"], sort=False)
    ]
    return History(wanted, table, figures)


def for_run(store: Store, rows: list[CellRow]) -> list[History]:
    """The report's history section: each framework of the run whose store holds several versions of it."""
    found = []
    for framework in dict.fromkeys(row.framework for row in rows):
        history = build(store, HistoryRange(framework))
        if history.table["version"].nunique() > 1:
            found.append(history)
    return found
