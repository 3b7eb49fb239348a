"""Which (framework, model, dataset) combinations can run: one check for the CLI and ``plan``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

from workloads import models
from workloads.datasets import DATASETS
from workloads.datasets import spec as dataset_spec
from workloads.errors import RequestError
from workloads.frameworks import check_api
from workloads.ops import NO_DATASET, OPS_MODEL, check_framework


def known_models() -> list[str]:
    return sorted([*models.MODELS, OPS_MODEL])


def known_datasets() -> list[str]:
    return sorted([*DATASETS, NO_DATASET])


def check_pairing(
    framework: str, model_name: str, dataset: str, plugins: Optional[Mapping[str, models.ModelInfo]] = None
) -> None:
    """Raise a RequestError saying why ``model_name`` on ``dataset`` cannot run on ``framework``.

    ``plugins`` are plugin models known by description only: the host learns them from a
    discovery container (``workloads.discover``) and never imports their code.
    """
    if model_name == OPS_MODEL or dataset == NO_DATASET:
        if (model_name, dataset) != (OPS_MODEL, NO_DATASET):
            raise RequestError(f"model {OPS_MODEL} takes dataset {NO_DATASET}, and only it does")
        check_framework(framework)
        return
    found = plugins or {}
    if model_name not in found and model_name not in models.MODELS:
        known = ", ".join(sorted({*models.MODELS, *found}))
        raise RequestError(f"unknown model {model_name!r}; known: {known}")
    model = found[model_name] if model_name in found else models.get(model_name).info()
    check_api(framework, model)
    kind = dataset_spec(dataset).kind
    if model.input_kind != kind:
        raise RequestError(f"model {model.name} takes {model.input_kind} input, but dataset {dataset} holds {kind}s")
