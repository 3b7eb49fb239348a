"""The matrix spec (YAML) as pydantic models; `load_spec` names file, key path and expectation."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import Field, StringConstraints, field_validator, model_validator

from orchestrator.errors import SpecError
from orchestrator.spec.validate import Cpuset, Memory, Name, Version, is_option_value
from orchestrator.spec.yamlfile import Strict, load_model
from workloads.contract import DEFAULT_WARMUP_STEPS

DEFAULT_SPEC = Path("matrices/default.yaml")
DEFAULT_REFERENCE = "tensorflow"
# A value a spec sets a framework option to, as YAML gives it; the workload parses its text
# (workloads.frameworks.OptionValue is the parsed value).
OptionSetting = Union[bool, int, float, str]


SlurmName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class SlurmPlacement(Strict):
    """Where a system's cells go with `run --backend slurm` (the CLI's --slurm-* options win)."""

    partition: Optional[SlurmName] = None
    account: Optional[SlurmName] = None
    time_limit_min: Optional[int] = Field(default=None, ge=1)


class System(Strict):
    """Where cells run: CPU limits, or a GPU count (and optionally which devices)."""

    kind: Literal["cpu", "gpu"]
    cpuset: Optional[Cpuset] = None
    memory: Optional[Memory] = None
    gpus: int = Field(default=0, ge=0, le=64)
    device_ids: Optional[list[int]] = None
    slurm: Optional[SlurmPlacement] = None

    @model_validator(mode="after")
    def _gpus_match_kind(self) -> System:
        if self.kind == "gpu" and self.gpus < 1:
            raise ValueError("a gpu system needs 'gpus' >= 1")
        if self.kind == "cpu" and self.gpus:
            raise ValueError("a cpu system has no 'gpus'")
        if self.device_ids is not None and len(self.device_ids) != self.gpus:
            raise ValueError(f"'device_ids' names {len(self.device_ids)} devices but 'gpus' is {self.gpus}")
        return self


class FrameworkSel(Strict):
    """A catalog framework at one version; `variants` narrows the catalog's variants."""

    name: Name
    version: Version
    variants: Optional[list[Name]] = None
    options: dict[Name, Union[OptionSetting, list[OptionSetting]]] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _safe_values(cls, options: dict) -> dict:
        for key, value in options.items():
            for item in value if isinstance(value, list) else [value]:
                if not is_option_value(str(item).lower() if isinstance(item, bool) else str(item)):
                    raise ValueError(f"option {key}: value {item!r} has characters that are not allowed")
        return options


class Workload(Strict):
    name: Name
    model: Name
    dataset: Name
    batch_sizes: list[int] = Field(min_length=1)
    epochs: int = Field(default=1, ge=1, le=1000)
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    lr: float = Field(default=0.001, gt=0, lt=10)
    max_samples: Optional[int] = Field(default=None, ge=1)
    # Generated datasets only: how many training samples to generate (default: the dataset's own count).
    generated_samples: Optional[int] = Field(default=None, ge=1)
    warmup_steps: int = Field(default=DEFAULT_WARMUP_STEPS, ge=0)
    timeout_s: int = Field(default=1800, ge=10)
    # Only these frameworks run this workload (e.g. an experiment a seed ran on two of them).
    frameworks: Optional[list[Name]] = None

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, sizes: list[int]) -> list[int]:
        if any(size < 1 or size > 65536 for size in sizes):
            raise ValueError("batch sizes must be between 1 and 65536")
        return sizes


# A host path that becomes a bind-mount source: no ':' or ',' (the engine's separators).
PluginDir = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./-]{1,200}$")]


class Spec(Strict):
    """`reference` (the framework speed ratios divide by) defaults to tensorflow when the spec runs
    it, else to the spec's first framework, so a spec without the key still has its ratios."""

    name: Name
    description: str = ""
    reference: Name = DEFAULT_REFERENCE
    repeats: int = Field(default=5, ge=1, le=100)  # seed 004 repeats every measurement five times
    systems: dict[Name, System] = Field(min_length=1)
    frameworks: list[FrameworkSel] = Field(min_length=1)
    workloads: list[Workload] = Field(min_length=1)
    # Folders of model plugins, relative to the spec's folder; mounted read-only into every cell.
    plugins: list[PluginDir] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _default_reference(cls, data: object) -> object:
        if not isinstance(data, dict) or "reference" in data:
            return data
        names = [item.get("name") for item in data.get("frameworks") or [] if isinstance(item, dict)]
        if names and DEFAULT_REFERENCE not in names and isinstance(names[0], str):
            return {**data, "reference": names[0]}
        return data


def load_spec(path: Path = DEFAULT_SPEC) -> Spec:
    """The spec at `path`; its `reference` must be one of its frameworks (else no ratio has a divisor)."""
    spec = load_model(path, Spec)
    names = list(dict.fromkeys(selection.name for selection in spec.frameworks))
    if spec.reference not in names:
        known = ", ".join(names)
        raise SpecError(str(path), "reference", f"'{spec.reference}' is not a framework of this spec; known: {known}")
    return spec


def spec_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def require_system(spec: Spec, spec_path: Path, system: str) -> System:
    if system not in spec.systems:
        raise SpecError(str(spec_path), "systems", f"no system '{system}'; known: {', '.join(spec.systems)}")
    return spec.systems[system]
