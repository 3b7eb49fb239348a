"""The queries across runs that `compare`, `regress` and `history` make: which stored cells a
selection (`framework@version[-variant]`, a run id, an image id or tag) names, and what the store
holds when it names none.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal, Optional

from sqlalchemy import select

from orchestrator.errors import UsageError
from orchestrator.spec.validate import NAME, VERSION
from orchestrator.store.database import Store, cells
from orchestrator.store.rows import CellRow

SHOWN_CHOICES = 8  # what an unknown selection lists of the store's holdings


@dataclass(frozen=True)
class Selection:
    kind: Literal["build", "run", "image"]
    text: str
    framework: Optional[str] = None
    version: Optional[str] = None
    variant: Optional[str] = None

    def pinned(self) -> tuple[str, str]:
        """FRAMEWORK and VERSION of a `framework@version` selection (`parse_selection` sets both for a build)."""
        if self.kind != "build" or self.framework is None or self.version is None:
            raise UsageError(f"{self.text}: expected framework@version[-variant]")
        return self.framework, self.version


def parse_selection(text: str) -> Selection:
    """`name@version[-variant]`, an image id (`sha256:...` or 12+ hex digits), an image tag
    (`repo/name:tag`), or else a run id."""
    if "@" in text:
        name, _, rest = text.partition("@")
        version, _, variant = rest.partition("-")
        if (
            not re.fullmatch(NAME, name)
            or not re.fullmatch(VERSION, version)
            or (variant and not re.fullmatch(NAME, variant))
        ):
            raise UsageError(f"selection {text!r}: expected framework@version or framework@version-variant")
        return Selection("build", text, name, version, variant or None)
    if text.startswith("sha256:") or re.fullmatch(r"[0-9a-f]{12,64}", text) or ":" in text:
        return Selection("image", text)
    return Selection("run", text)


def select_cells(store: Store, selection: Selection, runs: list[str]) -> tuple[list[CellRow], list[str]]:
    """The selection's cells, and the runs they came from (default: the newest run holding it)."""
    if selection.kind == "run":
        require_run(store, selection.text)
        return store.cell_rows(selection.text), [selection.text]
    for run_id in runs:
        require_run(store, run_id)
    chosen = (
        runs or [run_id for run_id in reversed(store.run_ids()) if _matching(store.cell_rows(run_id), selection)][:1]
    )
    if not runs and chosen and (design := store.design(chosen[0])):  # all the rounds of that regress
        chosen = [
            run_id for run_id in store.run_ids() if (store.design(run_id) or {}).get("regress") == design["regress"]
        ]
    rows = [row for run_id in chosen for row in _matching(store.cell_rows(run_id), selection)]
    if not rows:
        where = f"runs {', '.join(runs)}" if runs else "the store"
        held = _builds(store) if selection.kind == "build" else _images(store)
        raise UsageError(
            f"no cells of {selection.text} in {where}; the store holds {selection.kind}s "
            f"{closest_first(selection.text, held)}"
        )
    return rows, chosen


def require_run(store: Store, run_id: str) -> None:
    """Say "no run X" (and which runs there are, closest first) rather than anything about its kind."""
    ids = store.run_ids()
    if run_id not in ids:
        raise UsageError(f"no run {run_id} in the store; it holds runs {closest_first(run_id, ids)}")


def closest_first(text: str, names: list[str]) -> str:
    """Up to `SHOWN_CHOICES` of `names`, the most similar to `text` first (difflib's ratio)."""
    if not names:
        return "(none)"
    ranked = difflib.get_close_matches(text, names, n=SHOWN_CHOICES, cutoff=0.0)
    more = f" and {len(names) - len(ranked)} more" if len(names) > len(ranked) else ""
    return ", ".join(ranked) + more


def _builds(store: Store) -> list[str]:
    query = select(cells.c.framework, cells.c.version, cells.c.variant).distinct()
    with store.engine.connect() as conn:
        return sorted(f"{name}@{version}-{variant}" for name, version, variant in conn.execute(query))


def _images(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(image for (image,) in conn.execute(select(cells.c.image).distinct()))


def _matching(rows: list[CellRow], selection: Selection) -> list[CellRow]:
    if selection.kind == "image":
        text = selection.text
        return [
            r
            for r in rows
            if r.image == text
            or (r.image_id or "").removeprefix("sha256:").startswith(text.removeprefix("sha256:"))
        ]
    return [
        r
        for r in rows
        if r.framework == selection.framework
        and r.version == selection.version
        and selection.variant in (None, r.variant)
    ]


