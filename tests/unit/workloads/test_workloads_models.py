"""The model registry: built-in families, their layer plans, and plugins (errors name the file).

The parameter counts themselves are measured in the real framework images by
tests/integration/test_workloads_models.py; here only what needs no framework.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads import models
from workloads.errors import RequestError
from workloads.frameworks import FRAMEWORKS, check_api
from workloads.models import InputSpec, Model, load_plugins, register, resnet50, resnet_cifar, vgg

BUILT_IN = {"mlp", "cnn", "lenet", "resnet20", "resnet56", "vgg16", "resnet50", "lstm"}


def test_every_built_in_model_has_a_builder_for_every_framework():
    assert set(models.MODELS) >= BUILT_IN
    for name in BUILT_IN:
        for framework in FRAMEWORKS:
            check_api(framework, models.get(name).info())
            assert callable(models.get(name).builder(FRAMEWORKS[framework].api)), (name, framework)
    assert models.get("lstm").input_kind == "sequence" and models.get("vgg16").input_kind == "image"


def test_layer_plans_match_the_papers():
    assert resnet_cifar.blocks_per_stage(20) == 3 and resnet_cifar.blocks_per_stage(56) == 9
    with pytest.raises(ValueError, match="6n\\+2"):
        resnet_cifar.blocks_per_stage(21)
    strides = [stride for _, stride in resnet_cifar._plan(20)]
    assert strides == [1, 1, 1, 2, 1, 1, 2, 1, 1]  # option-B projections where the stride is 2
    blocks = resnet50._plan()
    assert len(blocks) == 16 and sum(project for _, _, project in blocks) == 4
    assert sum(1 for layer in vgg.CONFIG_D if layer != vgg.POOL) == 13


def test_input_spec_layouts():
    first = InputSpec((3, 32, 24), 10, channels_first=True)
    last = InputSpec((32, 24, 3), 10)
    assert (first.channels, first.spatial, first.channel_axis, first.gluon_layout) == (3, (32, 24), 1, "NCHW")
    assert (last.channels, last.spatial, last.channel_axis, last.gluon_layout) == (3, (32, 24), -1, "NHWC")


def test_register_refuses_incomplete_or_clashing_models():
    with pytest.raises(RequestError, match="no builder given"):
        register(Model("nothing", "image", "no builders"))
    with pytest.raises(RequestError, match="input_kind must be one of"):
        register(Model("audio", "waveform", "x", torch=lambda torch, spec: None))
    with pytest.raises(RequestError, match="'mlp' is already registered"):
        register(Model("mlp", "image", "another mlp", torch=lambda torch, spec: None))


def test_a_model_without_a_builder_for_an_api_says_which_it_has(monkeypatch):
    torch_only = Model("torch_only", "image", "x", torch=lambda torch, spec: None)
    monkeypatch.setitem(models.MODELS, "torch_only", torch_only)
    with pytest.raises(RequestError, match="no gluon builder, so it cannot run on mxnet \\(it has: torch\\)"):
        check_api("mxnet", torch_only.info())


def test_plugins_register_their_models(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(models, "MODELS", dict(models.MODELS))
    (tmp_path / "tiny.py").write_text(
        "from workloads.models import Model, register\n"
        "register(Model('tiny', 'image', 'a tiny model', torch=lambda torch, spec: torch.nn.Flatten()))\n"
    )
    (tmp_path / "_private.py").write_text("raise RuntimeError('never imported')\n")
    assert load_plugins(tmp_path) == ["tiny"]
    assert models.get("tiny").apis() == ("torch",)
    assert load_plugins(tmp_path) == []  # imported once


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("raise RuntimeError('boom')\n", "plugin failed to import: RuntimeError: boom"),
        ("from workloads.models import Model, register\nregister(Model('x', 'image', 'd'))\n", "no builder given"),
        ("def broken(:\n", "plugin failed to import: SyntaxError"),
    ],
)
def test_plugin_errors_name_the_file(tmp_path: Path, monkeypatch, source: str, problem: str):
    monkeypatch.setattr(models, "MODELS", dict(models.MODELS))
    (tmp_path / "bad.py").write_text(source)
    with pytest.raises(RequestError, match=problem) as caught:
        load_plugins(tmp_path)
    assert str(tmp_path / "bad.py") in str(caught.value)


def test_missing_plugin_folder(tmp_path: Path):
    with pytest.raises(RequestError, match="plugin folder .*nowhere does not exist"):
        load_plugins(tmp_path / "nowhere")
