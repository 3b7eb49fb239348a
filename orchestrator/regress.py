"""`regress`: run the same cells for a baseline and a candidate build, interleaved A B A B.

Each round is one run holding A's cells then B's, so slow drift of the machine (thermal state,
other load) falls on both builds alike instead of on whichever ran second. The images are built
(or found current) by the first round. `compare` then pools the rounds' repeats.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console

from orchestrator.compare import Selection
from orchestrator.errors import UsageError
from orchestrator.images import BuildOptions
from orchestrator.plan import Filters
from orchestrator.runner import RunRequest, run_matrix
from orchestrator.spec import FrameworkSel, load_spec, require_system
from orchestrator.store import now

DEFAULT_SPEC = Path("matrices/regress.yaml")


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


def regress_spec(request: RegressRequest, out: Path) -> Path:
    """The workloads and systems of `request.spec_path` with exactly the two builds as frameworks;
    each build keeps the options the spec gives its framework."""
    spec = load_spec(request.spec_path)
    require_system(spec, request.spec_path, request.system)
    if not 1 <= request.repeats <= 100:
        raise UsageError(f"--repeats {request.repeats}: expected 1 to 100 rounds")
    builds = []
    for flag, selection in (("--baseline", request.baseline), ("--candidate", request.candidate)):
        if selection.kind != "build":
            raise UsageError(f"{flag} {selection.text}: regress builds images, so it needs framework@version[-variant]")
        options = next((f.options for f in spec.frameworks if f.name == selection.framework), {})
        builds.append(
            FrameworkSel(
                name=selection.framework,
                version=selection.version,
                variants=[selection.variant] if selection.variant else None,
                options=options,
            )
        )
    if builds[0] == builds[1]:
        raise UsageError(f"--baseline and --candidate are the same build ({request.baseline.text})")
    data = spec.model_dump(mode="json", exclude_none=True)
    data.update(name=f"regress-{spec.name}", frameworks=[b.model_dump(mode="json", exclude_none=True) for b in builds])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_spec(path)  # the same checks a hand-written spec gets
    return path


def run_interleaved(request: RegressRequest, console: Console) -> list[str]:
    """`repeats` rounds, each a run of A's cells then B's; returns the run ids."""
    spec_path = regress_spec(request, request.results_dir / "regress" / now().strftime("%Y%m%d-%H%M%S"))
    runs = []
    for round_index in range(request.repeats):
        console.print(
            f"[bold]round {round_index + 1}/{request.repeats}[/]: {request.baseline.text} then {request.candidate.text}"
        )
        summary = run_matrix(
            RunRequest(
                spec_path=spec_path,
                filters=Filters(system=request.system),
                repeats=1,
                store=request.store,
                data_dir=request.data_dir,
                results_dir=request.results_dir,
                build=BuildOptions(
                    wheelhouse=Path(wheels) if (wheels := os.environ.get("BENCHMATRIX_WHEELHOUSE")) else None
                ),
            ),
            console,
        )
        runs.append(summary.run_id)
    return runs
