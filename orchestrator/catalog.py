"""The framework catalog (images/catalog.yaml): which images exist and how each is installed."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.cuda import newest_supported, support_note
from orchestrator.errors import UsageError
from orchestrator.validate import (
    AptPackage,
    EnvKey,
    EnvValue,
    HttpsUrl,
    ImageRef,
    Name,
    PipRequirement,
    Version,
)
from orchestrator.yamlfile import load_model

REPO_ROOT = Path(__file__).resolve().parent.parent
# BENCHMATRIX_CATALOG: another catalog (a site's own entries; the tests' deliberately broken build).
DEFAULT_CATALOG = Path(os.environ.get("BENCHMATRIX_CATALOG") or REPO_ROOT / "images" / "catalog.yaml")
TEMPLATES_DIR = REPO_ROOT / "images" / "templates"
SUITES = ("bullseye", "bookworm", "trixie")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class Catalog(Strict):
    schema_version: Literal[1] = Field(alias="schema")
    bases: dict[Name, Base]
    images: list[ImageSpec]

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        seen: set[str] = set()
        for index, image in enumerate(self.images):
            if image.base not in self.bases:
                raise ValueError(f"images.{index}.base: unknown base '{image.base}' (known: {sorted(self.bases)})")
            if image.key in seen:
                raise ValueError(f"images.{index}: duplicate image {image.key}")
            seen.add(image.key)
        return self

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
    return load_model(path, Catalog)
