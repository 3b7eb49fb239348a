"""Expand a spec into cells. No engine and no plugin code here: what a spec's plugins register comes from a
`Discoverer` (run in a container, cached), their identity from their files' digest."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from orchestrator.errors import SpecError, UsageError
from orchestrator.run.plugins import Discoverer, PluginFolder, folder_digest
from orchestrator.spec.catalog import Catalog
from orchestrator.spec.matrix import FrameworkSel, OptionSetting, Spec, System
from workloads import frameworks as workload_frameworks
from workloads.contract import Training
from workloads.datasets import spec as dataset_spec
from workloads.errors import RequestError
from workloads.models import ModelInfo
from workloads.pairing import check_pairing

# The model and option registry is the workloads' own (built-in models, plugins, options and
# the values each device can run), so plan refuses exactly what a cell would refuse.
FRAMEWORK_OPTIONS = workload_frameworks.FRAMEWORKS
# Fields added to Cell later: they enter `config_hash` only when set, so existing hashes stay valid.
_HASHED_WHEN_SET: dict[str, Any] = {"plugin_digests": (), "generated_samples": None}
# Where things are, not what they are: never part of a cell's identity (store migration 4 rehashed older cells).
_LOCATION_FIELDS = frozenset({"plugins"})


@dataclass(frozen=True)
class Cell:
    """One container run. `config_hash` identifies it across runs (repeat excluded)."""

    system: str
    system_kind: str
    framework: str
    version: str
    variant: str
    image: str
    workload: str
    model: str
    dataset: str
    batch_size: int
    epochs: int
    optimizer: str
    lr: float
    max_samples: Optional[int]
    warmup_steps: int
    timeout_s: int
    cpuset: Optional[str] = None
    memory: Optional[str] = None
    gpus: int = 0
    device_ids: Optional[tuple[int, ...]] = None
    options: tuple[tuple[str, OptionSetting], ...] = field(default_factory=tuple)
    repeat: int = 0
    plugins: tuple[str, ...] = ()  # host folders of model plugins, mounted read-only into the cell (location)
    generated_samples: Optional[int] = None  # training samples of a generated dataset
    plugin_digests: tuple[str, ...] = ()  # sha256 of each plugin folder's files (identity), in `plugins` order

    @property
    def config_hash(self) -> str:
        return config_hash_of(asdict(self))

    @property
    def label(self) -> str:
        options = "".join(f",{key}={value}" for key, value in self.options)
        return (
            f"{self.system}/{self.framework}@{self.version}-{self.variant}/{self.workload}"
            f"/bs{self.batch_size}{options}/r{self.repeat}"
        )

    @property
    def training(self) -> Training:
        """What the cell trains, as the workload takes it: Training's fields, which Cell names alike."""
        return Training(**{spec.name: getattr(self, spec.name) for spec in fields(Training)})

    def to_dict(self) -> dict:
        return {**asdict(self), "config_hash": self.config_hash}


def config_hash_of(config: Mapping[str, Any]) -> str:
    """A cell's identity from its fields (a Cell's, or a stored config's): all but the repeat, the location
    of its plugins and later fields left unset. Store migrations rehash stored cells with it."""
    hashed = {
        key: value
        for key, value in config.items()
        if key not in ("repeat", "config_hash", *_LOCATION_FIELDS)
        and not (key in _HASHED_WHEN_SET and _unset(value, _HASHED_WHEN_SET[key]))
    }
    return hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _unset(value: Any, default: Any) -> bool:
    """A stored config holds JSON lists where a Cell holds tuples."""
    return value == default or (isinstance(value, list) and tuple(value) == default)


@dataclass(frozen=True)
class Filters:
    system: Optional[str] = None
    frameworks: tuple[str, ...] = ()
    workloads: tuple[str, ...] = ()


def parse_framework_filter(text: str) -> tuple[str, Optional[str]]:
    name, _, version = text.partition("@")
    return name, version or None


def plan(
    spec: Spec,
    spec_path: Path,
    catalog: Catalog,
    filters: Filters = Filters(),
    repeats: Optional[int] = None,
    discover: Optional[Discoverer] = None,
) -> list[Cell]:
    """Every (system, framework image, workload, batch size, option combination, repeat).

    A spec with plugins needs `discover` (see `orchestrator.run.plugins`) to learn their models.
    """
    _check_filters(spec, spec_path, catalog, filters)
    folders = plugin_folders(spec, spec_path)
    known = _PluginModels(spec_path, catalog, folders, discover)
    cells = []
    for system_name, system in spec.systems.items():
        if filters.system and system_name != filters.system:
            continue
        for index, selection in enumerate(spec.frameworks):
            if not _framework_selected(selection, filters):
                continue
            images = _images_for(catalog, spec_path, index, selection, system)
            option_sets = _option_combinations(spec_path, index, selection, system.kind)
            for image, workload in itertools.product(images, spec.workloads):
                if filters.workloads and workload.name not in filters.workloads:
                    continue
                if workload.frameworks is not None and image.framework not in workload.frameworks:
                    continue
                plugin_models = known.of(image.framework, tuple(entry.tag for entry in images))
                try:
                    check_pairing(image.framework, workload.model, workload.dataset, plugin_models)
                except RequestError as exc:
                    raise SpecError(str(spec_path), f"workloads.{workload.name}.model", str(exc)) from exc
                if workload.generated_samples is not None and dataset_spec(workload.dataset).needs_files:
                    raise SpecError(
                        str(spec_path),
                        f"workloads.{workload.name}.generated_samples",
                        f"applies to generated datasets only; {workload.dataset} is read from files (use max_samples)",
                    )
                for batch, options, repeat in itertools.product(
                    workload.batch_sizes, option_sets, range(repeats or spec.repeats)
                ):
                    cells.append(
                        Cell(
                            system=system_name,
                            system_kind=system.kind,
                            framework=image.framework,
                            version=image.version,
                            variant=image.variant,
                            image=image.tag,
                            workload=workload.name,
                            model=workload.model,
                            dataset=workload.dataset,
                            batch_size=batch,
                            epochs=workload.epochs,
                            optimizer=workload.optimizer,
                            lr=workload.lr,
                            max_samples=workload.max_samples,
                            warmup_steps=workload.warmup_steps,
                            timeout_s=workload.timeout_s,
                            cpuset=system.cpuset,
                            memory=system.memory,
                            gpus=system.gpus,
                            device_ids=tuple(system.device_ids) if system.device_ids else None,
                            options=options,
                            repeat=repeat,
                            plugins=tuple(str(folder.path) for folder in folders),
                            plugin_digests=tuple(folder.digest for folder in folders),
                            generated_samples=workload.generated_samples,
                        )
                    )
    return cells


def _check_filters(spec: Spec, spec_path: Path, catalog: Catalog, filters: Filters) -> None:
    if filters.system and filters.system not in spec.systems:
        raise UsageError(f"--system {filters.system}: {spec_path} has {', '.join(spec.systems)}")
    for text in filters.frameworks:
        name, version = parse_framework_filter(text)
        catalog.find(name, version)
        if not any(_framework_selected(sel, Filters(frameworks=(text,))) for sel in spec.frameworks):
            raise UsageError(f"--framework {text}: not in {spec_path}")
    known_workloads = {workload.name for workload in spec.workloads}
    for name in filters.workloads:
        if name not in known_workloads:
            raise UsageError(f"--workload {name}: {spec_path} has {', '.join(sorted(known_workloads))}")


def _framework_selected(selection: FrameworkSel, filters: Filters) -> bool:
    if not filters.frameworks:
        return True
    for text in filters.frameworks:
        name, version = parse_framework_filter(text)
        if selection.name == name and version in (None, selection.version):
            return True
    return False


def _images_for(catalog: Catalog, spec_path: Path, index: int, selection: FrameworkSel, system: System) -> list:
    try:
        entries = catalog.find(selection.name, selection.version)
    except UsageError as exc:
        raise SpecError(str(spec_path), f"frameworks.{index}", str(exc)) from exc
    entries = [entry for entry in entries if entry.device == system.kind]
    if selection.variants is not None:
        entries = [entry for entry in entries if entry.variant in selection.variants]
    elif any(entry.variant == system.kind for entry in entries):
        # Other variants of a build (gpu-cudabase beside gpu) are opt-in through `variants`.
        entries = [entry for entry in entries if entry.variant == system.kind]
    if not entries:
        raise SpecError(
            str(spec_path),
            f"frameworks.{index}",
            f"the catalog has no {system.kind} image of {selection.name}@{selection.version}"
            + (f" with variants {selection.variants}" if selection.variants else ""),
        )
    return entries


def _option_combinations(spec_path: Path, index: int, selection: FrameworkSel, device: str) -> list[tuple]:
    """A list-valued option is a matrix dimension; a scalar applies to every cell.

    Each value is checked against the framework's options and what `device` can run, and
    each combination against the settings that contradict each other.
    """
    spec = FRAMEWORK_OPTIONS.get(selection.name)
    known = spec.options if spec else {}
    for key, given in selection.options.items():
        if key not in known:
            raise SpecError(
                str(spec_path),
                f"frameworks.{index}.options.{key}",
                f"{selection.name} has no option '{key}'; known: {', '.join(sorted(known)) or 'none'}",
            )
        for value in given if isinstance(given, list) else [given]:
            try:
                workload_frameworks.check_option(selection.name, key, workload_frameworks.option_text(value), device)
            except RequestError as exc:
                raise SpecError(str(spec_path), f"frameworks.{index}.options.{key}", str(exc)) from exc
    keys = sorted(selection.options)
    values = [v if isinstance(v, list) else [v] for v in (selection.options[k] for k in keys)]
    combinations = [tuple(zip(keys, combo)) for combo in itertools.product(*values)]
    for combination in combinations:
        try:
            workload_frameworks.check_combination(
                selection.name, {key: workload_frameworks.option_text(value) for key, value in combination}
            )
        except RequestError as exc:
            raise SpecError(str(spec_path), f"frameworks.{index}.options", str(exc)) from exc
    return combinations


def plugin_folders(spec: Spec, spec_path: Path) -> tuple[PluginFolder, ...]:
    """The spec's plugin folders (relative to the spec's own folder) with their digests; nothing is imported."""
    folders = []
    for index, entry in enumerate(spec.plugins):
        folder = (spec_path.parent / entry).resolve()
        if not folder.is_dir():
            raise SpecError(str(spec_path), f"plugins.{index}", f"plugin folder {folder} does not exist")
        folders.append(PluginFolder(folder, folder_digest(folder)))
    return tuple(folders)


class _PluginModels:
    """The plugin models of each framework, discovered once per plan (and only when the spec has plugins)."""

    def __init__(
        self, spec_path: Path, catalog: Catalog, folders: tuple[PluginFolder, ...], discover: Optional[Discoverer]
    ) -> None:
        if folders and discover is None:
            raise ValueError(f"{spec_path} names plugins: plan() needs a discoverer to learn their models")
        self.catalog = catalog
        self.folders = folders
        self.discover = discover
        self.found: dict[str, dict[str, ModelInfo]] = {}

    def of(self, framework: str, preferred: tuple[str, ...]) -> dict[str, ModelInfo]:
        """`framework`'s plugin models, discovered in the first of `preferred` (then its other images) present."""
        if not self.folders or self.discover is None:
            return {}
        if framework not in self.found:
            others = tuple(e.tag for e in self.catalog.images if e.framework == framework and e.tag not in preferred)
            models = self.discover(framework, (*preferred, *others), self.folders)
            self.found[framework] = {model.name: model for model in models}
        return self.found[framework]
