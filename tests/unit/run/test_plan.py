"""Planning is pure: golden cell lists, options as dimensions, filters, and refusals at plan time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.backends import workload_command
from orchestrator.errors import SpecError, UsageError
from orchestrator.run.plan import Filters, plan
from orchestrator.spec.catalog import load_catalog
from orchestrator.spec.matrix import load_spec
from workloads.__main__ import build_parser
from workloads.contract import RunArgs, Training

GOLDEN = Path(__file__).parent.parent / "golden"
DEFAULT = Path("matrices/default.yaml")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def write_spec(tmp_path: Path, head: str, frameworks: str, batch_sizes: str = "[32]") -> Path:
    """A spec of `head` (name, repeats, systems lines), `frameworks` and one MLP workload."""
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: s\n{head}frameworks: [{frameworks}]\n"
        f"workloads: [{{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: {batch_sizes}}}]\n"
    )
    return path


def labels(cells):
    return [(cell.label, cell.image, cell.config_hash) for cell in cells]


def test_default_matrix_cpu_matches_golden(catalog):
    cells = plan(load_spec(DEFAULT), DEFAULT, catalog, Filters(system="cpu"))
    golden = json.loads((GOLDEN / "plan_default_cpu.json").read_text())
    assert [list(item) for item in labels(cells)] == golden
    assert len(cells) == 10
    assert {cell.framework for cell in cells} == {"tensorflow", "pytorch", "mxnet", "keras-mxnet", "jax"}


def test_gpu_system_uses_gpu_variants(catalog):
    cells = plan(load_spec(DEFAULT), DEFAULT, catalog, Filters(system="4_gpu", frameworks=("tensorflow",)))
    assert {cell.image for cell in cells} == {"benchmatrix/tensorflow:2.21.0-gpu"}
    assert all(cell.gpus == 4 for cell in cells)


def test_gpu_system_without_gpu_image_is_refused(tmp_path, catalog):
    spec_path = write_spec(
        tmp_path, "systems: {1_gpu: {kind: gpu, gpus: 1}}\n", '{name: tensorflow, version: "2.15.1"}'
    )
    with pytest.raises(SpecError, match="no gpu image of tensorflow@2.15.1") as caught:
        plan(load_spec(spec_path), spec_path, catalog)
    assert caught.value.key_path == "frameworks.0"


def test_repeats_and_list_options_expand(tmp_path, catalog):
    spec_path = write_spec(
        tmp_path,
        "repeats: 2\nsystems: {cpu: {kind: cpu}}\n",
        '{name: mxnet, version: "1.9.1", options: {hybridize: [false, true]}}',
        batch_sizes="[32, 64]",
    )
    cells = plan(load_spec(spec_path), spec_path, catalog)
    assert len(cells) == 2 * 2 * 2
    assert {cell.options for cell in cells} == {(("hybridize", False),), (("hybridize", True),)}
    same_config = [c for c in cells if c.batch_size == 32 and c.options == (("hybridize", True),)]
    assert [c.repeat for c in same_config] == [0, 1]
    assert same_config[0].config_hash == same_config[1].config_hash


def test_a_spec_without_repeats_repeats_each_cell_five_times(tmp_path, catalog):
    spec_path = write_spec(tmp_path, "systems: {cpu: {kind: cpu}}\n", '{name: mxnet, version: "1.9.1"}')
    cells = plan(load_spec(spec_path), spec_path, catalog)
    assert [c.repeat for c in cells] == [0, 1, 2, 3, 4]
    assert len({c.config_hash for c in cells}) == 1
    assert len(plan(load_spec(spec_path), spec_path, catalog, repeats=2)) == 2


def test_unknown_option_is_refused_at_plan_time(tmp_path, catalog):
    spec_path = write_spec(
        tmp_path, "systems: {cpu: {kind: cpu}}\n", '{name: pytorch, version: "2.13.0", options: {hybridize: true}}'
    )
    with pytest.raises(SpecError) as caught:
        plan(load_spec(spec_path), spec_path, catalog)
    assert caught.value.key_path == "frameworks.0.options.hybridize"
    assert "known: compile" in caught.value.expected


def test_unknown_framework_and_version_list_known_ones(catalog):
    with pytest.raises(UsageError, match="known: jax, keras-mxnet, mxnet, pytorch, tensorflow"):
        catalog.find("caffe")
    with pytest.raises(UsageError, match="known: 1.9.1, 1.9.0, 1.6.0"):
        catalog.find("mxnet", "0.1")


def test_filters(catalog):
    spec = load_spec(DEFAULT)
    cells = plan(spec, DEFAULT, catalog, Filters(system="cpu", frameworks=("jax@0.10.2",), workloads=("cnn",)))
    assert [cell.label for cell in cells] == ["cpu/jax@0.10.2-cpu/cnn/bs32/r0"]
    with pytest.raises(UsageError, match="--workload nope"):
        plan(spec, DEFAULT, catalog, Filters(workloads=("nope",)))
    with pytest.raises(UsageError, match="--system moon"):
        plan(spec, DEFAULT, catalog, Filters(system="moon"))


def test_cli_unknown_framework_exit_2(cli):
    done = cli("plan", "--framework", "caffe")
    assert done.returncode == 2
    assert "unknown framework 'caffe'; known:" in done.stderr


def test_cli_plan_json(cli):
    done = cli("plan", "--system", "cpu", "--json")
    assert done.returncode == 0, done.stderr
    cells = json.loads(done.stdout)
    assert len(cells) == 10 and all(len(cell["config_hash"]) == 16 for cell in cells)


def test_a_gpu_system_takes_the_gpu_variant_unless_variants_name_another(tmp_path, catalog):
    head = "repeats: 1\nsystems: {1_gpu: {kind: gpu, gpus: 1}}\n"
    spec_path = write_spec(tmp_path, head, '{name: tensorflow, version: "2.21.0"}')
    assert [c.variant for c in plan(load_spec(spec_path), spec_path, catalog)] == ["gpu"]
    spec_path = write_spec(tmp_path, head, '{name: tensorflow, version: "2.21.0", variants: [gpu, gpu-cudabase]}')
    assert [c.variant for c in plan(load_spec(spec_path), spec_path, catalog)] == ["gpu", "gpu-cudabase"]


def test_generated_samples_size_generated_datasets_only(tmp_path, catalog):
    path = tmp_path / "g.yaml"
    path.write_text(
        "name: g\nsystems: {cpu: {kind: cpu}}\nframeworks: [{name: pytorch, version: '2.13.0'}]\n"
        "workloads: [{name: seq, model: lstm, dataset: synthetic_seq, batch_sizes: [32], generated_samples: 640}]\n"
    )
    (cell,) = plan(load_spec(path), path, catalog, repeats=1)
    assert cell.generated_samples == 640
    command = workload_command(cell)
    assert command[command.index("--generated-samples") + 1] == "640"
    path.write_text(path.read_text().replace("lstm, dataset: synthetic_seq", "mlp, dataset: fashion_mnist"))
    with pytest.raises(SpecError) as caught:
        plan(load_spec(path), path, catalog)
    assert caught.value.key_path == "workloads.seq.generated_samples"
    assert "applies to generated datasets only; fashion_mnist is read from files" in caught.value.expected


def test_a_cells_command_parses_back_in_the_cell_to_what_the_spec_says(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(
        "name: w\nsystems: {cpu: {kind: cpu}}\nframeworks: [{name: jax, version: '0.10.2'}]\nworkloads:\n"
        "  - {name: w, model: cnn, dataset: fashion_mnist, batch_sizes: [8], epochs: 3, optimizer: sgd, lr: 0.05,\n"
        "     max_samples: 640, warmup_steps: 4}\n"
    )
    (cell,) = plan(load_spec(path), path, load_catalog(), repeats=1)
    parsed = RunArgs.from_namespace(build_parser().parse_args(workload_command(cell)[3:]))
    assert parsed.training == Training(
        framework="jax", model="cnn", dataset="fashion_mnist", batch_size=8, epochs=3, optimizer="sgd", lr=0.05,
        max_samples=640, generated_samples=None, warmup_steps=4,
    )  # fmt: skip
