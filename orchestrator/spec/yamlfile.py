"""Load a YAML file into a pydantic model, turning every failure into a SpecError that names the
file, the key path and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from orchestrator.errors import SpecError

Model = TypeVar("Model", bound=BaseModel)


class Strict(BaseModel):
    """The base of every file model (spec, catalog, bundle manifest): an unknown key is an error, not
    a silently ignored typo, and a loaded model is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_model(path: Path, model: type[Model]) -> Model:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(str(path), "", f"cannot read file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError(str(path), "", f"invalid YAML: {where}{getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise SpecError(str(path), "", f"expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(path, exc) from exc


def invalid(path: Path, exc: ValidationError) -> SpecError:
    """The SpecError for pydantic's first complaint about `path`: its key path and what was expected."""
    first = exc.errors()[0]
    return SpecError(str(path), ".".join(str(part) for part in first["loc"]), _expected(first))


def _expected(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    if "pattern" in ctx:
        return f"expected a value matching {ctx['pattern']}, got {error.get('input')!r}"
    if error["type"] == "extra_forbidden":
        return "unknown key (check its spelling)"
    if error["type"] == "missing":
        return "required key is missing"
    return f"{error['msg']} (got {error.get('input')!r})"
