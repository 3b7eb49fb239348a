"""``python -m workloads.discover FOLDER...``: what model plugins register, learned inside a cell's container.

The orchestrator never imports plugin code: it runs this in a hardened container of a
framework's image (no network, not root, read-only) and reads the one line it prints, as asv
discovers benchmarks inside each environment. The line is ``BENCHMATRIX_PLUGINS`` and a JSON
object: ``{"models": [ModelInfo fields...]}``, or ``{"error": message, "folder": index}`` when
the folder at ``index`` fails to import (exit code 2, the workloads' usage error).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any, Optional

from workloads.contract import WorkloadExit
from workloads.errors import RequestError
from workloads.models import MODELS, ModelInfo, load_plugins

MARKER = "BENCHMATRIX_PLUGINS"


def discover(folders: list[str]) -> dict[str, Any]:
    """The models the plugin folders register, in order; the first folder that fails stops it."""
    found: list[str] = []
    for index, folder in enumerate(folders):
        try:
            found += load_plugins(folder)
        except RequestError as exc:
            return {"error": str(exc), "folder": index}
    return {"models": [asdict(MODELS[name].info()) for name in found]}


def read_line(output: str) -> Optional[dict[str, Any]]:
    """The discovery object in a container's output (the last marked line), or None when it printed none.

    A marked line that is not a JSON object (a plugin may print its own) is a ValueError."""
    lines = [line for line in output.splitlines() if line.startswith(MARKER + " ")]
    if not lines:
        return None
    found = json.loads(lines[-1][len(MARKER) + 1 :])
    if not isinstance(found, dict):
        raise ValueError(f"{MARKER} is followed by a {type(found).__name__}, not a JSON object")
    return found


def model_infos(found: dict[str, Any]) -> list[ModelInfo]:
    """The ``models`` of a discovery object as ModelInfo values (JSON lists back into tuples)."""
    return [ModelInfo(**{**entry, "apis": tuple(entry["apis"])}) for entry in found["models"]]


def main(argv: Optional[list[str]] = None) -> int:
    found = discover(sys.argv[1:] if argv is None else argv)
    print(f"{MARKER} {json.dumps(found, sort_keys=True)}", flush=True)
    return WorkloadExit.USAGE if "error" in found else WorkloadExit.OK


if __name__ == "__main__":
    sys.exit(main())
