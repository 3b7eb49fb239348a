"""`regress`: run the same cells for a baseline and a candidate build in counterbalanced rounds.

Each round is one run holding both builds' cells; the order alternates, A then B, then B then A,
so whatever drifts within a round (thermal state, page cache, a neighbour) falls on each build
in half the rounds instead of always on whichever ran second (the cells are stored in the order
they ran, so the order is recorded in each run). Both images are built (or found current) before
the first round: a side whose image does not build ends the gate at once, with that side named.

Sequential design: with `--max-repeats`, compare looks after `--repeats` rounds and, while a pair
is inconclusive, again after twice as many, and so on up to the cap. Each look spends a share of
alpha (`stats.look_alpha`), so both error rates stay at most alpha however the looks fall (checked
by bench/detector.py). The planned looks are stored with each round's run, so that `compare` on
these runs later judges them at the same levels.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional

import yaml
from rich.console import Console
from rich.status import Status

from orchestrator.analysis.compare import BrokenSide, Comparison, Outcome, Settings, SideName, compare
from orchestrator.backends.engine import connect
from orchestrator.clock import now
from orchestrator.errors import BuildFailed, UsageError
from orchestrator.images.build import BuildOptions, ensure_image
from orchestrator.run.plan import Filters, plan
from orchestrator.run.runner import RunRequest, RunSummary, building_discoverer, run_matrix
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import FrameworkSel, load_spec, require_system
from orchestrator.store.database import Store
from orchestrator.store.queries import Selection, select_cells

DEFAULT_SPEC = Path("matrices/regress.yaml")
MAX_ROUNDS = 100
DEFAULT_CAP = 20  # --max-repeats when not given (or --repeats, when that is more)
Order = Literal["AB", "BA"]
RunOne = Callable[[RunRequest, Console], RunSummary]  # one round: `runner.run_matrix`


@dataclass(frozen=True)
class RegressRequest:
    baseline: Selection
    candidate: Selection
    spec_path: Path
    system: str
    repeats: int
    store: str
    data_dir: Path
    results_dir: Path
    max_repeats: Optional[int] = None


@dataclass
class Rounds:
    """One regress's two specs (one per order) and the runs made so far, one per round."""

    request: RegressRequest
    specs: dict[Order, Path]
    name: str  # this regress's id (its results folder's timestamp), stored with each round's run
    runs: list[str] = field(default_factory=list)
    alpha: Optional[float] = None  # stored with the design when not the user's: a bisect step's share

    def design(self, planned: tuple[int, ...]) -> dict:
        """What `Store.record_design` keeps with each round's run, so `compare` judges them as this gate did."""
        alpha = {} if self.alpha is None else {"alpha": self.alpha}
        return {"regress": self.name, "looks": list(planned), **alpha}


def cap(repeats: int, max_repeats: Optional[int]) -> int:
    """`--max-repeats` as given, else the default cap, raised to `--repeats` so that asking for more
    rounds than the default cap is never an error about an option the user did not pass."""
    return max_repeats if max_repeats is not None else max(DEFAULT_CAP, repeats)


def looks(repeats: int, max_repeats: Optional[int]) -> tuple[int, ...]:
    """Rounds after which compare looks: `repeats`, then doubling (few looks spend little alpha) up to the cap."""
    if not 1 <= repeats <= MAX_ROUNDS:
        raise UsageError(f"--repeats {repeats}: expected 1 to {MAX_ROUNDS} rounds")
    if max_repeats is None:
        return (repeats,)
    if not repeats <= max_repeats <= MAX_ROUNDS:
        raise UsageError(f"--max-repeats {max_repeats}: expected {repeats} (--repeats) to {MAX_ROUNDS} rounds")
    planned = [repeats]
    while planned[-1] < max_repeats:
        planned.append(min(2 * planned[-1], max_repeats))
    return tuple(planned)


def round_order(index: int) -> Order:
    """A B, B A, A B, …: over each two rounds every build runs first once."""
    return "AB" if index % 2 == 0 else "BA"


def regress_spec(request: RegressRequest, out: Path, order: Order = "AB") -> Path:
    """The workloads and systems of `request.spec_path` with exactly the two builds as frameworks,
    in `order`; each build keeps the options the spec gives its framework."""
    spec = load_spec(request.spec_path)
    require_system(spec, request.spec_path, request.system)
    builds = []
    for flag, selection in (("--baseline", request.baseline), ("--candidate", request.candidate)):
        if selection.kind != "build":
            raise UsageError(f"{flag} {selection.text}: regress builds images, so it needs framework@version[-variant]")
        framework, version = selection.pinned()
        options = next((f.options for f in spec.frameworks if f.name == framework), {})
        builds.append(
            FrameworkSel(
                name=framework,
                version=version,
                variants=[selection.variant] if selection.variant else None,
                options=options,
            )
        )
    if builds[0] == builds[1]:
        raise UsageError(f"--baseline and --candidate are the same build ({request.baseline.text})")
    data = spec.model_dump(mode="json", exclude_none=True)
    ordered = builds if order == "AB" else builds[::-1]
    frameworks = [b.model_dump(mode="json", exclude_none=True) for b in ordered]
    # The run's tables divide by the baseline's framework: the spec's own reference may not be run here.
    data.update(name=f"regress-{spec.name}", reference=builds[0].name, frameworks=frameworks)
    if spec.plugins:  # relative to the spec's folder, which is not where this copy is written
        data["plugins"] = [str((request.spec_path.parent / folder).resolve()) for folder in spec.plugins]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"spec-{order}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_spec(path)  # the same checks a hand-written spec gets
    return path


def prepare(request: RegressRequest) -> Rounds:
    """Both orders' specs, checked before anything is built or run."""
    name = now().strftime("%Y%m%d-%H%M%S")
    out = request.results_dir / "regress" / name
    return Rounds(request, {order: regress_spec(request, out, order) for order in ("AB", "BA")}, name)


def build_images(rounds: Rounds, console: Console) -> Optional[BrokenSide]:
    """Build (or find current) both sides' images before any round; the first side that fails is broken."""
    request = rounds.request
    spec_path = rounds.specs["AB"]
    catalog = load_catalog()
    filters = Filters(system=request.system)
    options = _build_options()
    discover = building_discoverer(spec_path, catalog, options, console)
    cells = plan(load_spec(spec_path), spec_path, catalog, filters, 1, discover)
    client = connect()
    sides: tuple[tuple[SideName, Selection], ...] = (("baseline", request.baseline), ("candidate", request.candidate))
    for name, selection in sides:
        tags = dict.fromkeys(
            cell.image
            for cell in cells
            if (cell.framework, cell.version) == (selection.framework, selection.version)
            and selection.variant in (None, cell.variant)
        )
        for tag in tags:
            entry = next(e for e in catalog.images if e.tag == tag)
            with console.status(f"image {tag} ({name})") as status:
                try:
                    ensure_image(
                        client,
                        catalog,
                        entry,
                        options,
                        on_line=functools.partial(_show_build_line, status, tag),
                        console=console,
                    )
                except BuildFailed as exc:
                    return BrokenSide(name, selection.text, Outcome.BUILD_FAILED, str(exc).splitlines()[0])
    return None


def _show_build_line(status: Status, tag: str, line: str) -> None:
    status.update(f"{tag}: {line[:70]}")


def run_rounds(rounds: Rounds, total: int, planned: tuple[int, ...], console: Console, run_one: RunOne) -> None:
    """Run rounds until `total` are done, each a run of both builds' cells in the round's order,
    stored with the design (this regress, its planned looks)."""
    request = rounds.request
    store = Store(request.store)
    while len(rounds.runs) < total:
        index = len(rounds.runs)
        order = round_order(index)
        first, second = (
            (request.baseline, request.candidate) if order == "AB" else (request.candidate, request.baseline)
        )
        console.print(f"[bold]round {index + 1}/{total}[/]: {first.text} then {second.text}")
        summary = run_one(
            RunRequest(
                spec_path=rounds.specs[order],
                filters=Filters(system=request.system),
                repeats=1,
                store=request.store,
                data_dir=request.data_dir,
                results_dir=request.results_dir,
                build=_build_options(),
            ),
            console,
        )
        store.record_design(summary.run_id, rounds.design(planned))
        rounds.runs.append(summary.run_id)


def gate(
    rounds: Rounds, planned: tuple[int, ...], settings: Settings, console: Console, run_one: RunOne = run_matrix
) -> Comparison:
    """Run rounds up to each planned look and judge them all; stop at the first look where no pair
    is inconclusive, else at the last (the cap)."""
    settings = replace(settings, looks=planned)
    for total in planned:
        run_rounds(rounds, total, planned, console, run_one)
        result = judge_rounds(rounds, settings)
        if result.settled:
            break
        if total < planned[-1]:
            console.print(f"not every pair is conclusive after {total} rounds: running up to {planned[-1]}")
    return replace(result, design=design_note(rounds, planned, result.settled))


def judge_rounds(rounds: Rounds, settings: Settings) -> Comparison:
    """Both builds' cells of the rounds so far, compared as `compare` would on these runs."""
    request, store = rounds.request, Store(rounds.request.store)
    base_rows, _ = select_cells(store, request.baseline, rounds.runs)
    cand_rows, _ = select_cells(store, request.candidate, rounds.runs)
    return compare(base_rows, cand_rows, "build", settings, request.baseline.text, request.candidate.text)


def _build_options() -> BuildOptions:
    return BuildOptions(wheelhouse=Path(wheels) if (wheels := os.environ.get("BENCHMATRIX_WHEELHOUSE")) else None)


def design_note(rounds: Rounds, planned: tuple[int, ...], settled: bool) -> str:
    """How many rounds the gate took, and why it stopped there."""
    done = len(rounds.runs)
    why = "every pair conclusive" if settled else "the last planned look, pairs still inconclusive"
    sequential = f"; looks planned after {', '.join(map(str, planned))} rounds" if len(planned) > 1 else ""
    return (
        f"regress {rounds.name}: {done} rounds, order alternating (A B, B A, …){sequential}; "
        f"stopped after {done}: {why}"
    )
