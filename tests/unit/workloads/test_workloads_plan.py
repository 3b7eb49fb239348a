"""Plan-time refusals of models, datasets and options, plugins in the plan, and the seeds matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.backends import workload_command
from orchestrator.errors import SpecError
from orchestrator.run.plan import Filters, plan
from orchestrator.run.plugins import folder_digest
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import load_spec
from tests.discovery import HostDiscoverer

REPO = Path(__file__).resolve().parents[3]
SEEDS = REPO / "matrices" / "seeds.yaml"
PLUGINS = REPO / "examples" / "plugins"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def write_spec(tmp_path: Path, frameworks: str, workloads: str, extra: str = "", system: str = "cpu") -> Path:
    kind = "{kind: cpu}" if system == "cpu" else "{kind: gpu, gpus: 1}"
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: s\nrepeats: 1\n{extra}systems: {{{system}: {kind}}}\n"
        f"frameworks: [{frameworks}]\nworkloads: [{workloads}]\n"
    )
    return path


MLP = "{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32]}"


@pytest.mark.parametrize(
    ("framework", "options", "key_path", "message"),
    [
        ("pytorch", "{precision: fp64}", "frameworks.0.options.precision", "expected precision= one of fp32"),
        ("pytorch", "{precision: [fp32, fp16]}", "frameworks.0.options.precision", "on GPUs only, not on a CPU"),
        ("mxnet", "{data_format: channels_last}", "frameworks.0.options.data_format", "on GPUs only"),
        ("keras-mxnet", "{precision: bf16}", "frameworks.0.options.precision", "keras-mxnet has no option"),
        (
            "tensorflow",
            "{run_eagerly: [false, true], jit_compile: [false, true]}",
            "frameworks.0.options",
            "run_eagerly=true and jit_compile=true cannot be combined",
        ),
    ],
)
def test_options_a_framework_or_device_lacks_are_refused_at_plan_time(
    tmp_path, catalog, framework, options, key_path, message
):
    version = {e.framework: e.version for e in catalog.images if e.device == "cpu" and not e.unbuildable}[framework]
    spec_path = write_spec(tmp_path, f'{{name: {framework}, version: "{version}", options: {options}}}', MLP)
    with pytest.raises(SpecError, match=message) as caught:
        plan(load_spec(spec_path), spec_path, catalog)
    assert caught.value.key_path == key_path


def test_gpu_only_values_plan_on_a_gpu_system(tmp_path, catalog):
    frameworks = '{name: pytorch, version: "2.13.0", options: {precision: [fp32, bf16, fp16]}}'
    spec_path = write_spec(tmp_path, frameworks, MLP, system="1_gpu")
    cells = plan(load_spec(spec_path), spec_path, catalog)
    assert [dict(c.options)["precision"] for c in cells] == ["fp32", "bf16", "fp16"]
    assert "--option" in workload_command(cells[2]) and "precision=fp16" in workload_command(cells[2])


@pytest.mark.parametrize(
    ("framework", "workload", "message"),
    [
        ("keras-mxnet", "{name: ops, model: ops, dataset: none, batch_sizes: [1]}", "no keras-mxnet backend"),
        ("pytorch", "{name: l, model: lstm, dataset: cifar10, batch_sizes: [8]}", "takes sequence input"),
        ("pytorch", "{name: r, model: resnet18, dataset: cifar10, batch_sizes: [8]}", "unknown model 'resnet18'"),
    ],
)
def test_models_a_framework_cannot_run_are_refused_at_plan_time(tmp_path, catalog, framework, workload, message):
    version = "2.2.4.3" if framework == "keras-mxnet" else "2.13.0"
    spec_path = write_spec(tmp_path, f'{{name: {framework}, version: "{version}"}}', workload)
    with pytest.raises(SpecError, match=message) as caught:
        plan(load_spec(spec_path), spec_path, catalog)
    assert caught.value.key_path.endswith(".model")


def test_workload_frameworks_narrow_a_workload(tmp_path, catalog):
    frameworks = '{name: keras-mxnet, version: "2.2.4.3"}, {name: mxnet, version: "1.9.1"}'
    ops = "{name: ops, model: ops, dataset: none, batch_sizes: [1], frameworks: [mxnet]}"
    spec_path = write_spec(tmp_path, frameworks, f"{MLP}, {ops}")
    cells = plan(load_spec(spec_path), spec_path, catalog)
    assert sorted((c.framework, c.workload) for c in cells) == [
        ("keras-mxnet", "mlp"),
        ("mxnet", "mlp"),
        ("mxnet", "ops"),
    ]


def test_plugin_models_appear_in_the_plan_and_are_mounted(tmp_path, catalog):
    workload = "{name: p, model: mnist_mlp, dataset: mnist, batch_sizes: [128]}"
    extra = f"plugins: [{PLUGINS}]\n"
    spec_path = write_spec(tmp_path, '{name: mxnet, version: "1.9.1"}', workload, extra)
    (cell,) = plan(load_spec(spec_path), spec_path, catalog, discover=HostDiscoverer(spec_path, tmp_path))
    assert cell.model == "mnist_mlp" and cell.plugins == (str(PLUGINS),)
    assert cell.plugin_digests == (folder_digest(PLUGINS),)
    command = workload_command(cell)
    assert command[command.index("--plugin-dir") + 1] == "/opt/benchmatrix/plugins/0"
    plain = plan(load_spec(write_spec(tmp_path, '{name: mxnet, version: "1.9.1"}', MLP)), spec_path, catalog)[0]
    assert "--plugin-dir" not in workload_command(plain)
    assert len({cell.config_hash, plain.config_hash}) == 2


def test_a_broken_plugin_is_refused_naming_the_file(tmp_path, catalog):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text("import not_a_module_anywhere\n")
    spec_path = write_spec(tmp_path, '{name: mxnet, version: "1.9.1"}', MLP, "plugins: [plugins]\n")
    discover = HostDiscoverer(spec_path, tmp_path / "cache")
    with pytest.raises(SpecError, match=f"{plugins}/broken.py: plugin failed to import: ModuleNotFoundError") as caught:
        plan(load_spec(spec_path), spec_path, catalog, discover=discover)
    assert caught.value.key_path == "plugins.0"
    missing = write_spec(tmp_path, '{name: mxnet, version: "1.9.1"}', MLP, "plugins: [nowhere]\n")
    with pytest.raises(SpecError, match="plugin folder .*nowhere does not exist") as caught:
        plan(load_spec(missing), missing, catalog, discover=discover)
    assert caught.value.key_path == "plugins.0"


def test_a_discovered_plugin_model_is_checked_against_each_framework(tmp_path, catalog):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "torch_only.py").write_text(
        "from workloads.models import Model, register\n"
        "register(Model('torch_only', 'image', 'PyTorch only', torch=lambda torch, spec: None))\n"
    )
    workload = "{name: p, model: torch_only, dataset: mnist, batch_sizes: [8]}"
    frameworks = '{name: pytorch, version: "2.13.0"}, {name: mxnet, version: "1.9.1"}'
    spec_path = write_spec(tmp_path, frameworks, workload, "plugins: [plugins]\n")
    with pytest.raises(SpecError, match="model torch_only has no gluon builder, so it cannot run on mxnet") as caught:
        plan(load_spec(spec_path), spec_path, catalog, discover=HostDiscoverer(spec_path, tmp_path / "cache"))
    assert caught.value.key_path == "workloads.p.model"
    only_torch = write_spec(tmp_path, '{name: pytorch, version: "2.13.0"}', workload, "plugins: [plugins]\n")
    (cell,) = plan(load_spec(only_torch), only_torch, catalog, discover=HostDiscoverer(only_torch, tmp_path / "cache"))
    assert cell.model == "torch_only"


def test_plugin_paths_cannot_smuggle_mount_separators(tmp_path):
    spec_path = write_spec(tmp_path, '{name: mxnet, version: "1.9.1"}', MLP, 'plugins: ["/etc:/x"]\n')
    with pytest.raises(SpecError) as caught:
        load_spec(spec_path)
    assert caught.value.key_path == "plugins.0"


def test_seeds_matrix_lists_every_seed_experiment(cli, tmp_path, catalog):
    # The seeds name a plugin: discoveries cached first, `plan` then needs no engine (none answers here).
    plan(load_spec(SEEDS), SEEDS, catalog, Filters(system="cpu"), discover=HostDiscoverer(SEEDS, tmp_path))
    env = {"BENCHMATRIX_CACHE": str(tmp_path), "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    done = cli("plan", "--spec", str(SEEDS), "--system", "cpu", "--json", env=env)
    assert done.returncode == 0, done.stderr
    cells = json.loads(done.stdout)
    experiments = {(c["workload"], c["model"], c["dataset"]) for c in cells}
    assert experiments == {
        ("s000-mlp", "mlp", "fashion_mnist"),
        ("s000-cnn", "cnn", "fashion_mnist"),
        ("s000-resnet50-synthetic", "resnet50", "synthetic"),
        ("s000-resnet56-cifar10", "resnet56", "cifar10"),
        ("s000-resnet50-imagenet", "resnet50", "imagenet"),
        ("s002-ops", "ops", "none"),
        ("s002-lenet-5ep", "lenet", "mnist"),
        ("s002-lenet-10ep", "lenet", "mnist"),
        ("s002-lenet-15ep", "lenet", "mnist"),
        ("s002-xla-cifar10", "resnet20", "cifar10"),
        ("s003-resnet20", "resnet20", "cifar10"),
        ("s003-vgg16", "vgg16", "cifar10"),
        ("s004-lstm", "lstm", "synthetic_seq"),
        ("s004-mnist-mlp-plugin", "mnist_mlp", "mnist"),
    }
    lenet = [c for c in cells if c["workload"] == "s002-lenet-5ep"]
    assert {c["framework"] for c in lenet} == {"tensorflow", "pytorch", "mxnet", "keras-mxnet", "jax"}
    assert {tuple(map(tuple, c["options"])) for c in lenet if c["framework"] == "tensorflow"} == {
        (("jit_compile", False),),
        (("jit_compile", True),),
        (("run_eagerly", True),),
    }
    assert all(c["batch_size"] == 200 and c["optimizer"] == "adam" for c in lenet)
    synthetic = {c["batch_size"] for c in cells if c["workload"] == "s000-resnet50-synthetic"}
    assert synthetic == {16, 32}
    assert {c["framework"] for c in cells if c["workload"] == "s002-ops"} == {"tensorflow", "pytorch", "mxnet", "jax"}


def test_seeds_matrix_plans_on_every_system(catalog, tmp_path):
    spec = load_spec(SEEDS)
    discover = HostDiscoverer(SEEDS, tmp_path)
    for system in spec.systems:
        assert plan(spec, SEEDS, catalog, Filters(system=system), discover=discover), system
