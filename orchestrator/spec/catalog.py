"""The framework catalog (images/catalog.yaml): which images exist and how each is installed."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, ValidationError, model_validator

from orchestrator.errors import SpecError, UsageError
from orchestrator.images.cuda import newest_supported, support_note
from orchestrator.spec.validate import (
    AptPackage,
    EnvKey,
    EnvValue,
    HttpsUrl,
    ImageRef,
    Name,
    PipRequirement,
    Version,
)
from orchestrator.spec.yamlfile import Strict, load_model
from workloads.timing import TEST_HOOKS, TEST_PREFIX

REPO_ROOT = Path(__file__).resolve().parents[2]
# BENCHMATRIX_CATALOG: another catalog (a site's own entries; the tests' deliberately broken build).
DEFAULT_CATALOG = Path(os.environ.get("BENCHMATRIX_CATALOG") or REPO_ROOT / "images" / "catalog.yaml")
TEMPLATES_DIR = REPO_ROOT / "images" / "templates"
SUITES = ("bullseye", "bookworm", "trixie")
VERSION_FIELD = "{version}"  # the placeholder a family's pip and description templates use


class Base(Strict):
    """Either a Debian suite bootstrapped here (offline) or any registry image (online).

    `apt` names what a registry image lacks and both build stages install first: a CUDA runtime
    image ships CUDA and cuDNN but no Python.
    """

    suite: Optional[Literal["bullseye", "bookworm", "trixie"]] = None
    image: Optional[ImageRef] = None
    python: str = Field(pattern=r"^3\.[0-9]{1,2}$")
    apt: list[AptPackage] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self) -> Base:
        if (self.suite is None) == (self.image is None):
            raise ValueError("a base names exactly one of 'suite' (bootstrapped) or 'image' (registry)")
        return self

    @property
    def ref(self) -> str:
        return f"benchmatrix/base:{self.suite}" if self.suite else str(self.image)


class ImageSpec(Strict):
    """One buildable (or documented-unbuildable) framework image."""

    framework: Name
    version: Version
    variant: Name = "cpu"
    device: Literal["cpu", "gpu"] = "cpu"
    base: Name
    pip: list[PipRequirement] = Field(default_factory=list)
    apt: list[AptPackage] = Field(default_factory=list)
    env: dict[EnvKey, EnvValue] = Field(default_factory=dict)
    extra_index_url: Optional[HttpsUrl] = None
    wheelhouse: bool = False
    unbuildable: Optional[str] = None
    # The CUDA version a GPU build's kernels were compiled with, where it limits the GPUs it runs on.
    cuda: Optional[str] = Field(default=None, pattern=r"^[0-9]{1,2}\.[0-9]$")
    description: str = ""

    @model_validator(mode="after")
    def _cuda_is_known(self) -> ImageSpec:
        if self.cuda is not None:
            if self.device != "gpu":
                raise ValueError(f"{self.key}: 'cuda' is for GPU images (device: gpu)")
            newest_supported(self.cuda)
        return self

    @property
    def gpu_support(self) -> Optional[str]:
        """Which GPUs the build runs on, where its CUDA version limits them."""
        return support_note(self.cuda) if self.cuda else None

    @property
    def tag(self) -> str:
        return f"benchmatrix/{self.framework}:{self.version}-{self.variant}"

    @property
    def key(self) -> str:
        return f"{self.framework}@{self.version}-{self.variant}"


class Pin(Strict):
    """What one version of a family needs beyond the family's template."""

    pip: list[PipRequirement] = Field(default_factory=list)
    env: dict[EnvKey, EnvValue] = Field(default_factory=dict)


class Family(Strict):
    """One image entry templated over a list of versions, oldest first: `regress --bisect` searches it.

    `{version}` in `pip` and `description` is replaced by each version (plain text replacement, no
    format strings); every expanded entry is then validated as an ImageSpec, so nothing reaches a
    Dockerfile unchecked. `pins` adds a version's own requirements or environment.
    """

    framework: Name
    variant: Name = "cpu"
    device: Literal["cpu", "gpu"] = "cpu"
    base: Name
    versions: list[Version] = Field(min_length=2)
    pip: list[str] = Field(min_length=1)
    apt: list[AptPackage] = Field(default_factory=list)
    env: dict[EnvKey, EnvValue] = Field(default_factory=dict)
    pins: dict[Version, Pin] = Field(default_factory=dict)
    description: str = ""

    @model_validator(mode="after")
    def _expandable(self) -> Family:
        if len(set(self.versions)) != len(self.versions):
            raise ValueError(f"{self.key}: a version is listed twice in 'versions'")
        unknown = sorted(set(self.pins) - set(self.versions))
        if unknown:
            raise ValueError(f"{self.key}: 'pins' names versions not in 'versions': {', '.join(unknown)}")
        if not any(VERSION_FIELD in requirement for requirement in self.pip):
            raise ValueError(f"{self.key}: no 'pip' requirement names {VERSION_FIELD}: every version would be the same")
        for version in self.versions:
            try:
                self.expand(version)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise ValueError(
                    f"{self.key}, version {version}: {'.'.join(map(str, first['loc']))}: {first['msg']} "
                    f"(got {first.get('input')!r})"
                ) from None
        return self

    @property
    def key(self) -> str:
        return f"family {self.framework}-{self.variant}"

    def expand(self, version: str) -> ImageSpec:
        pin = self.pins.get(version, Pin())
        return ImageSpec(
            framework=self.framework,
            version=version,
            variant=self.variant,
            device=self.device,
            base=self.base,
            pip=[requirement.replace(VERSION_FIELD, version) for requirement in self.pip] + pin.pip,
            apt=self.apt,
            env={**self.env, **pin.env},
            description=self.description.replace(VERSION_FIELD, version),
        )


class Catalog(Strict):
    schema_version: Literal[1] = Field(alias="schema")
    bases: dict[Name, Base]
    entries: list[ImageSpec] = Field(alias="images")
    families: list[Family] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        seen: set[str] = set()
        for index, image in enumerate(self.images):
            where = f"images.{index}" if index < len(self.entries) else f"families ({image.key})"
            if image.base not in self.bases:
                raise ValueError(f"{where}.base: unknown base '{image.base}' (known: {sorted(self.bases)})")
            if image.key in seen:
                raise ValueError(f"{where}: duplicate image {image.key}")
            seen.add(image.key)
        return self

    @cached_property
    def images(self) -> list[ImageSpec]:
        """The explicit entries, then each family's versions."""
        return self.entries + [family.expand(v) for family in self.families for v in family.versions]

    def family(self, framework: str, variant: Optional[str]) -> Family:
        """The family of `framework` (and `variant`, if given); a clear error naming those there are."""
        found = [f for f in self.families if f.framework == framework and variant in (None, f.variant)]
        if len(found) == 1:
            return found[0]
        known = ", ".join(f"{f.framework}-{f.variant} ({', '.join(f.versions)})" for f in self.families) or "none"
        what = f"{framework}-{variant}" if variant else framework
        if not found:
            raise UsageError(f"no version family of {what} in the catalog; families: {known}")
        raise UsageError(f"{what} has several families ({known}): name the variant, e.g. {framework}@VERSION-VARIANT")

    def base_of(self, image: ImageSpec) -> Base:
        return self.bases[image.base]

    @cached_property
    def frameworks(self) -> dict[str, list[str]]:
        known: dict[str, list[str]] = {}
        for image in self.images:
            versions = known.setdefault(image.framework, [])
            if image.version not in versions:
                versions.append(image.version)
        return known

    def find(self, framework: str, version: Optional[str] = None, variant: Optional[str] = None) -> list[ImageSpec]:
        """Entries matching the selection; an unknown framework or version lists the known ones."""
        if framework not in self.frameworks:
            raise UsageError(f"unknown framework '{framework}'; known: {', '.join(sorted(self.frameworks))}")
        if version is not None and version not in self.frameworks[framework]:
            raise UsageError(
                f"unknown version '{version}' of {framework}; known: {', '.join(self.frameworks[framework])}"
            )
        return [
            image
            for image in self.images
            if image.framework == framework
            and (version is None or image.version == version)
            and (variant is None or image.variant == variant)
        ]

    def entry_hash(self, image: ImageSpec) -> str:
        """Hash of everything that decides an image's content: entry, base and template."""
        template = (TEMPLATES_DIR / "Dockerfile.j2").read_text()
        payload = json.dumps(
            {"image": image.model_dump(), "base": self.base_of(image).model_dump(), "template": template},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def catalog_hash(self) -> str:
        return hashlib.sha256("".join(self.entry_hash(i) for i in self.images).encode()).hexdigest()


def load_catalog(path: Path = DEFAULT_CATALOG) -> Catalog:
    """The catalog, refusing the workloads' test-only variables in an image's env unless this process runs
    with the test hooks on (a real catalog that set them would slow every cell of that image)."""
    catalog = load_model(path, Catalog)
    if os.environ.get(TEST_HOOKS) != "1":
        for image in catalog.images:
            hooks = sorted(key for key in image.env if key.startswith(TEST_PREFIX))
            if hooks:
                expected = f"no test-only variable ({TEST_HOOKS}=1 in the orchestrator's environment allows it)"
                raise SpecError(str(path), f"{image.key}.env.{hooks[0]}", expected)
    return catalog
