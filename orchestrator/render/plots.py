"""The report's figures (matplotlib, Agg backend), drawn from per-group repeat summaries.

Each function takes the summary frame `report.summaries` builds (one row per group: median, q1,
q3, low, high, n, cv and the statuses) and returns a Plot, or None when the run has nothing to
draw for it. Cells that did not end ok are drawn as their status, never left out silently.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import os
import textwrap
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

ERROR_BARS = (
    "error bars span the lowest to the highest ok repeat (none with n < 2); bars and points are medians "
    "over n ok repeats; crimson-hatched bars include disturbed or timing-suspect repeats (the notes name them)"
)
MEANINGLESS = "accuracy meaningless: generated data"
RATIO = "bars: median img/s ÷ the reference's (as in the table); error bars: lowest to highest ratio of paired repeats"
GPU_UTILISATION = (
    "GPU utilisation is NVML's share of time in which a kernel was running, not how busy the SMs were; "
    "device memory is comparable across frameworks only under the same allocator policy (gpu_memory, default growth)"
)


@dataclass(frozen=True)
class Context:
    """What every figure names under its title so that it can be cited on its own: each framework
    label's in-container versions and the data with its provenance; and what panels must say."""

    versions: dict[str, str] = field(default_factory=dict)  # label → 'tensorflow 2.16.1, keras 3.3.3'
    data: list[str] = field(default_factory=list)  # 'data: fashion_mnist, generated (seed 0, n 60,000): …'
    caps: dict[str, str] = field(default_factory=dict)  # workload → 'capped at 6000 training samples per epoch'
    generated: frozenset[str] = frozenset()  # workloads whose data was generated: accuracy meaningless

    @property
    def text(self) -> str:
        versions = "; ".join(f"{label} = {text}" for label, text in self.versions.items())
        return " · ".join([f"in-container versions: {versions}"] * bool(versions) + self.data)

    def panel(self, title: str, workload: str) -> str:
        """A panel's title, with the workload's sample cap on a second line."""
        return title + (f"\n{self.caps[workload]}" if workload in self.caps else "")


@dataclass(frozen=True)
class Plot:
    name: str  # file stem
    title: str
    caption: str
    png: bytes
    context: str = ""  # the versions and data drawn under the figure's title


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _finish(figure: Figure, context: Context, heading: str, name: str, title: str, caption: str) -> Plot:
    """Title the figure, name its versions and data under the title, render it."""
    figure.suptitle(heading, fontsize=12)
    width, height = figure.get_size_inches()
    lines = textwrap.wrap(context.text, width=int(width * 15)) if context.text else []
    figure.text(0.5, 1 - 0.38 / height, "\n".join(lines[:4]), ha="center", va="top", fontsize=7, color="#333")
    return Plot(name, title, caption, _png(figure), context.text)


def draw_all(jobs: list[tuple[Callable[..., Optional[Plot]], tuple[Any, ...]]]) -> list[Plot]:
    """Run figure functions with their arguments, in parallel processes where there are cores.

    Drawing is CPU-bound and matplotlib single-threaded, so a report over a large run spends most of
    its time here; the figures are independent. Forked workers start at once (nothing to re-import).
    Functions that have nothing to draw return None and are left out; the order of `jobs` is kept.
    """
    workers = min(len(jobs), len(os.sched_getaffinity(0)))
    if workers <= 1:
        drawn = [function(*arguments) for function, arguments in jobs]
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            drawn = [future.result() for future in [pool.submit(function, *arguments) for function, arguments in jobs]]
    return [plot for plot in drawn if plot is not None]


def colours(labels: list[str]) -> dict[str, tuple]:
    palette = plt.get_cmap("tab10")
    return {label: palette(index % 10) for index, label in enumerate(labels)}


def _group_title(system: str, workload: str, batch: object) -> str:
    return f"{workload} · batch {batch} · {system}"


def _grid(panels: int, columns: int, width: float = 4.6, height: float = 3.6) -> tuple[Figure, list[Axes]]:
    """Panels on a fixed grid with margins in inches (title above, legend below). Fixed margins
    instead of constrained layout: a run with a hundred groups still draws in seconds."""
    columns = max(1, min(columns, panels))
    rows = math.ceil(panels / columns)
    figure_width, figure_height = max(width * columns, 7.5), height * rows + 1.7  # room for title and context
    figure, axes = plt.subplots(rows, columns, figsize=(figure_width, figure_height), squeeze=False)
    figure.subplots_adjust(
        left=0.8 / figure_width,
        right=1 - 0.25 / figure_width,
        top=1 - 1.2 / figure_height,
        bottom=1.3 / figure_height,
        wspace=0.3 * 4.6 / width,
        hspace=0.75,
    )
    flat = list(axes.flat)
    for extra in flat[panels:]:
        extra.set_visible(False)
    return figure, flat[:panels]


def _bars(
    ax: Axes,
    group: pd.DataFrame,
    labels: list[str],
    palette: dict,
    unit: str,
    annotate: bool,
    fmt: Callable[[float], str] = "{:,.0f}".format,
) -> None:
    """One bar per framework: the median with a min–max error bar; a status word where no repeat was ok.
    Annotated bars say their n, so a single measurement reads as one.

    All of a panel's bars are one `bar` call: a report over thousands of cells draws in seconds."""
    top = group["high"].max() if group["high"].notna().any() else 1.0
    rows = group.drop_duplicates("label").set_index("label")
    shown = [(x, label, rows.loc[label]) for x, label in enumerate(labels) if label in rows.index]
    measured = [(x, label, row) for x, label, row in shown if pd.notna(row["median"])]
    for x, _, row in shown:
        if pd.isna(row["median"]):
            ax.bar(x, top * 0.04, color="none", edgecolor="crimson", hatch="///")
            ax.text(x, top * 0.06, row["status_text"], rotation=90, ha="center", va="bottom", color="crimson")
    if measured:
        spread = [
            [row["median"] - row["low"], row["high"] - row["median"]] if row["n"] > 1 else [math.nan, math.nan]
            for _, _, row in measured
        ]
        ax.bar(
            [x for x, _, _ in measured],
            [row["median"] for _, _, row in measured],
            color=[palette[label] for _, label, _ in measured],
            yerr=list(zip(*spread)) if any(row["n"] > 1 for _, _, row in measured) else None,
            capsize=4,
            ecolor="black",
        )
        marked = [(x, row) for x, _, row in measured if row.get("flagged", 0)]
        if marked:  # repeats whose number is doubtful (disturbed, timing-suspect) are inside these medians
            ax.bar(
                [x for x, _ in marked],
                [row["median"] for _, row in marked],
                color="none",
                edgecolor="crimson",
                hatch="xx",
                linewidth=1.5,
            )
    if annotate:
        for x, _, row in measured:
            text = f"{fmt(row['median'])}\nn={row['n']:.0f}"
            text += f"\n{row['flagged']:.0f} flagged" if row.get("flagged", 0) else ""
            text += f"\n+ {row['status_text']}" if row["status_text"] else ""
            ax.text(x, row["high"], text, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(unit)
    ax.set_ylim(0, top * 1.22)
    ax.grid(axis="y", alpha=0.3)


def _legend(figure: Figure, axes: list[Axes], palette: dict, labels: Optional[set] = None) -> None:
    """One legend for the whole figure, below the panels, so it never hides a bar."""
    shown = labels if labels is not None else {label for ax in axes for label in ax.get_legend_handles_labels()[1]}
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[label]) for label in palette if label in shown]
    figure.legend(
        handles,
        [label for label in palette if label in shown],
        loc="lower center",
        ncol=min(5, max(1, len(handles))),
        fontsize=8,
        frameon=False,
    )


def throughput(speed: pd.DataFrame, palette: dict, context: Context) -> Optional[Plot]:
    """Seed Figure 4: training img/s per framework for every (system, workload, batch)."""
    if speed.empty:
        return None
    groups = list(speed.groupby(["system", "workload", "batch", "epochs"], sort=False))
    figure, axes = _grid(len(groups), 3)
    for ax, ((system, workload, batch, count), group) in zip(axes, groups):
        _bars(ax, group, list(dict.fromkeys(group["label"])), palette, "training img/s", annotate=True)
        title = _group_title(system, workload, batch) + (f" · {count} epochs" if count > 1 else "")
        ax.set_title(context.panel(title, workload), fontsize=10)
    heading = "Training throughput per framework (warm-up excluded; seed Figure 4)"
    return _finish(figure, context, heading, "throughput", "Training throughput per framework", ERROR_BARS)


def ratios(table: pd.DataFrame, palette: dict, reference: str, context: Context) -> Optional[Plot]:
    """The seeds' headline (seed 000 Figure 4): each framework's training speed as a share of the
    reference's, per (system, workload, batch); 100 % is the reference, drawn as a line."""
    if table.empty:
        return None
    groups = list(table.groupby(["system", "workload", "batch", "epochs"], sort=False))
    figure, axes = _grid(len(groups), 3)
    for ax, ((system, workload, batch, count), group) in zip(axes, groups):
        labels = list(dict.fromkeys(group["label"]))
        _bars(ax, group, labels, palette, f"img/s ÷ {reference} img/s", annotate=True, fmt="{:.0%}".format)
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_ylim(0, max(ax.get_ylim()[1], 1.25))
        title = _group_title(system, workload, batch) + (f" · {count} epochs" if count > 1 else "")
        ax.set_title(context.panel(title, workload), fontsize=10)
    heading = f"Training speed relative to {reference} (dashed line: {reference} = 100 %; seed 000 Figure 4)"
    return _finish(figure, context, heading, "ratios", f"Speed ratio against {reference}", RATIO)


def gpu_usage(speed: pd.DataFrame, gpu: dict[str, pd.DataFrame], palette: dict, context: Context) -> Optional[Plot]:
    """Throughput with GPU utilisation and memory beside it, for the groups where they were recorded."""
    recorded = pd.concat([frame[frame["median"].notna()] for frame in gpu.values()]) if gpu else pd.DataFrame()
    if recorded.empty:
        return None
    keys = list(dict.fromkeys(zip(recorded["system"], recorded["workload"], recorded["batch"])))
    figure, axes = _grid(len(keys) * (1 + len(gpu)), 1 + len(gpu))
    panels = iter(axes)
    for system, workload, batch in keys:
        group = speed[(speed["system"] == system) & (speed["workload"] == workload) & (speed["batch"] == batch)]
        labels = list(dict.fromkeys(group["label"]))
        for name, frame in {"training img/s": group, **gpu}.items():
            subset = frame[(frame["system"] == system) & (frame["workload"] == workload) & (frame["batch"] == batch)]
            ax = next(panels)
            _bars(ax, subset, labels, palette, name, annotate=frame is group)
            ax.set_title(context.panel(f"{name} · {_group_title(system, workload, batch)}", workload), fontsize=9)
    heading = "Throughput beside GPU utilisation and memory (NVML, mean / max over the timed training window)"
    title = "Throughput, GPU utilisation and GPU memory"
    return _finish(figure, context, heading, "gpu", title, f"{ERROR_BARS}; {GPU_UTILISATION}")


def epochs(epoch_time: pd.DataFrame, accuracy: pd.DataFrame, palette: dict, context: Context) -> Optional[Plot]:
    """Seed 002 Figure 4: time per epoch and accuracy for each epoch count, per framework; one
    pair of panels per (system, workload), a bar group per (batch, epoch count). Accuracy on
    generated data is labelled meaningless on its panel."""
    if epoch_time.empty and accuracy.empty:
        return None
    keys = list(dict.fromkeys(map(tuple, pd.concat([epoch_time, accuracy])[["system", "workload"]].values)))
    figure, axes = _grid(2 * len(keys), 2, width=5.2)
    panels = iter(axes)
    for system, workload in keys:
        for frame, unit in ((epoch_time, "seconds per epoch"), (accuracy, "test accuracy")):
            ax = next(panels)
            subset = frame[(frame["system"] == system) & (frame["workload"] == workload)]
            labels = list(dict.fromkeys(subset["label"]))
            groups = sorted(set(zip(subset["batch"], subset["epochs"])))
            width = 0.8 / max(1, len(labels))
            for index, label in enumerate(labels):
                rows = subset[subset["label"] == label]
                bars: list[tuple[float, float, float, float]] = []
                for batch, count, median, low, high, text in zip(
                    rows["batch"], rows["epochs"], rows["median"], rows["low"], rows["high"], rows["status_text"]
                ):
                    x = groups.index((batch, count)) + (index - (len(labels) - 1) / 2) * width
                    if pd.isna(median):
                        ax.text(x, 0, text, rotation=90, ha="center", va="bottom", color="crimson", fontsize=8)
                        continue
                    bars.append((x, median, median - low, high - median))
                    if len(groups) * len(labels) <= 12:
                        ax.text(
                            x,
                            high,
                            f"{median:.2f}" if median < 10 else f"{median:.0f}",
                            ha="center",
                            va="bottom",
                            fontsize=7,
                        )
                if bars:
                    xs, medians, below, above = zip(*bars)
                    ax.bar(xs, medians, width, color=palette[label], yerr=[below, above], capsize=2)
            ax.set_xticks(
                range(len(groups)), [f"bs {b}\n{e} epoch{'s' if e > 1 else ''}" for b, e in groups], fontsize=8
            )
            ax.set_ylabel(unit)
            title = f"{workload} · {system}"
            if unit == "test accuracy" and workload in context.generated:
                ax.set_title(f"{title}\n{MEANINGLESS}", fontsize=10, color="crimson")
            else:
                ax.set_title(context.panel(title, workload), fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            if unit == "test accuracy":
                ax.set_ylim(0, 1.1)
    _legend(figure, axes, palette, set(epoch_time.get("label", [])) | set(accuracy.get("label", [])))
    caption = ERROR_BARS + (f"; {', '.join(sorted(context.generated))}: {MEANINGLESS}" if context.generated else "")
    heading = "Time per epoch and accuracy by epoch count"
    return _finish(figure, context, heading, "epochs", "Time per epoch and accuracy", caption)


def scaling(table: pd.DataFrame, palette: dict, context: Context) -> Optional[Plot]:
    """img/s and efficiency (img/s at N GPUs ÷ (N × img/s at 1 GPU)) against the GPU count."""
    if table.empty:
        return None
    groups = list(table.groupby(["workload", "batch"], sort=False))
    figure, axes = _grid(2 * len(groups), 2)
    panels = iter(axes)
    for (workload, batch), group in groups:
        speed_ax, efficiency_ax = next(panels), next(panels)
        for row in group[group["median"].isna()].itertuples(index=False):
            speed_ax.plot(row.gpus, 0, marker="x", color="crimson")
            speed_ax.annotate(f"{row.label}: {row.status_text}", (row.gpus, 0), color="crimson", fontsize=8, ha="right")
        for label, rows in group[group["median"].notna()].groupby("label", sort=False):
            rows = rows.sort_values("gpus")
            _median_line(speed_ax, rows, "gpus", palette[label], label)
            efficiency_ax.plot(rows["gpus"], rows["efficiency"], marker="o", color=palette[label], label=label)
        gpus = sorted(group["gpus"].unique())
        for ax, unit in ((speed_ax, "training img/s"), (efficiency_ax, "scaling efficiency")):
            ax.set_xticks(gpus)
            ax.set_xlabel("GPUs")
            ax.set_ylabel(unit)
            ax.set_title(context.panel(f"{workload} · batch {batch} per GPU", workload), fontsize=10)
            ax.grid(alpha=0.3)
        efficiency_ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        efficiency_ax.set_ylim(0, 1.1)
        speed_ax.set_ylim(bottom=0)
    _legend(figure, axes, palette)
    caption = "efficiency 1.0 = linear scaling; " + ERROR_BARS
    return _finish(figure, context, "Scaling from 1 GPU", "scaling", "Scaling 1 → N GPUs", caption)


def _median_line(ax, rows: pd.DataFrame, x: str, colour: str, label: str) -> None:
    """Medians joined by a line, error bars from the lowest to the highest ok repeat."""
    ax.errorbar(
        rows[x],
        rows["median"],
        yerr=[rows["median"] - rows["low"], rows["high"] - rows["median"]],
        marker="o",
        capsize=3,
        color=colour,
        label=label,
    )


def batch_sweep(speed: pd.DataFrame, palette: dict, context: Context) -> Optional[Plot]:
    """img/s against batch size wherever a (system, workload, framework) ran several batch sizes."""
    sizes = speed[speed["median"].notna()].groupby(["system", "workload", "label"])["batch"].nunique()
    swept = sizes[sizes > 1].reset_index()[["system", "workload"]].drop_duplicates()
    if swept.empty:
        return None
    figure, axes = _grid(len(swept), 3)
    for ax, (system, workload) in zip(axes, swept.itertuples(index=False)):
        subset = speed[(speed["system"] == system) & (speed["workload"] == workload) & speed["median"].notna()]
        for label, rows in subset.groupby("label", sort=False):
            _median_line(ax, rows.sort_values("batch"), "batch", palette[label], label)
        failed = speed[(speed["system"] == system) & (speed["workload"] == workload) & speed["median"].isna()]
        for row in failed.itertuples(index=False):
            ax.annotate(row.status_text, (row.batch, 0), color="crimson", rotation=90, fontsize=8, va="bottom")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel("training img/s")
        ax.set_title(context.panel(f"{workload} · {system}", workload), fontsize=10)
        ax.grid(alpha=0.3)
    _legend(figure, axes, palette)
    return _finish(figure, context, "Batch-size sweep", "batch_sweep", "Batch-size sweep", ERROR_BARS)


def ops(table: pd.DataFrame, palette: dict, context: Context) -> Optional[Plot]:
    """Micro-benchmark curves: seconds against input size per op, log-log, one line per framework."""
    if table.empty:
        return None
    names = sorted(table["op"].unique())
    figure, axes = _grid(len(names), 3, width=4.2, height=3.3)
    for ax, name in zip(axes, names):
        for label, rows in table[table["op"] == name].groupby("label", sort=False):
            _median_line(ax, rows.sort_values("size"), "size", palette[label], label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("size (elements)")
        ax.set_ylabel("seconds")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    _legend(figure, axes, palette)
    heading = "Low-level operations (log-log)"
    return _finish(figure, context, heading, "ops", "Operations micro-benchmark", ERROR_BARS)


HISTORY = (
    "points: median training img/s over every stored ok repeat of that version (n beside it); error bars: lowest "
    "to highest; one line per host (marker) and variant · batch · options; a hatched x: no ok repeat"
)
HOST_MARKERS = "osD^vP*X"


def history(table: pd.DataFrame, framework: str, system: str, workload: str) -> Plot:
    """One workload on one system across a framework's versions, in release order: asv's graph for releases."""
    versions = [v for v in table["version"].cat.categories if v in set(table["version"].astype(str))]
    series = list(dict.fromkeys(table["series"]))
    hosts = list(dict.fromkeys(label.split(" · ")[0] for label in series))
    palette = colours(series)
    figure, (ax,) = _grid(1, 1, width=max(6.5, 1.1 * len(versions)), height=4.2)
    for label in series:
        rows = table[table["series"] == label]
        x = [versions.index(str(v)) for v in rows["version"]]
        ok = rows["median"].notna().tolist()
        marker = HOST_MARKERS[hosts.index(label.split(" · ")[0]) % len(HOST_MARKERS)]
        measured = rows[ok]
        ax.errorbar(
            [p for p, good in zip(x, ok) if good],
            measured["median"],
            yerr=[measured["median"] - measured["low"], measured["high"] - measured["median"]],
            marker=marker,
            capsize=4,
            color=palette[label],
            label=textwrap.shorten(label, 110),
        )
        for position, (_, row) in zip([p for p, good in zip(x, ok) if good], measured.iterrows()):
            ax.annotate(
                f"n={row['n']:.0f}", (position, row["median"]), textcoords="offset points", xytext=(6, 4), fontsize=7
            )
        for position, (_, row) in zip([p for p, good in zip(x, ok) if not good], rows[[not g for g in ok]].iterrows()):
            ax.plot(position, 0, marker="x", color="crimson", markersize=10)
            ax.annotate(row["status_text"], (position, 0), textcoords="offset points", xytext=(6, 4), color="crimson")
    ax.set_xticks(range(len(versions)), versions, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel(f"{framework} version (release order)")
    ax.set_ylabel("training img/s")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(f"{workload} · {system}", fontsize=10)
    figure.legend(loc="lower center", ncol=1, fontsize=7, frameon=False)
    name = f"history_{framework}_{system}_{workload}"
    heading = f"{framework} across versions: {workload} on {system}"
    return _finish(figure, Context(), heading, name, heading, HISTORY)
