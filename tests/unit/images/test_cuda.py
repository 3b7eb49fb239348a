"""Which GPUs a CUDA build runs on, and the run's refusal of the ones it cannot."""

from __future__ import annotations

import pytest

from orchestrator.backends import BackendName
from orchestrator.backends.slurm import Size
from orchestrator.errors import UsageError
from orchestrator.images.cuda import newest_supported, support_note, unsupported_gpus
from orchestrator.run.plan import Filters
from orchestrator.run.runner import RunRequest, prepare, unsupported_images
from orchestrator.spec.catalog import load_catalog

H100 = {"index": 0, "name": "NVIDIA H100", "compute_capability": "9.0"}
T4 = {"index": 1, "name": "Tesla T4", "compute_capability": "7.5"}
A100 = {"index": 2, "name": "A100", "compute_capability": "8.0"}


@pytest.mark.parametrize(
    ("cuda", "newest"),
    [("10.0", (7, 5)), ("10.2", (7, 5)), ("11.0", (8, 0)), ("11.2", (8, 6)), ("11.8", (9, 0)), ("12.4", (9, 0))],
)
def test_newest_supported_capability_per_cuda_version(cuda, newest):
    assert newest_supported(cuda)[0] == newest


def test_cuda_older_than_the_table_is_an_error():
    with pytest.raises(ValueError, match="CUDA 9.0 is older"):
        newest_supported("9.0")


def test_unsupported_gpus_names_each_newer_gpu():
    assert unsupported_gpus("10.0", [H100, T4, A100]) == [
        "GPU 0 (NVIDIA H100, compute capability 9.0) is newer than CUDA 10.0 supports (up to 7.5, Turing)",
        "GPU 2 (A100, compute capability 8.0) is newer than CUDA 10.0 supports (up to 7.5, Turing)",
    ]
    assert unsupported_gpus("11.8", [H100, T4]) == []
    assert support_note("11.2").startswith("CUDA 11.2: runs on GPUs up to compute capability 8.6")


def test_a_run_refuses_the_cu100_image_on_a_hopper_host():
    cu100 = load_catalog().find("mxnet", "1.9.0", "cu100")[0]
    assert unsupported_images([cu100], [H100]) == [
        "benchmatrix/mxnet:1.9.0-cu100: GPU 0 (NVIDIA H100, compute capability 9.0) is newer than CUDA 10.0 "
        "supports (up to 7.5, Turing)"
    ]
    assert unsupported_images([cu100], [T4]) == []


CU100_SPEC = (
    "name: s\nsystems: {1_gpu: {kind: gpu, gpus: 1}}\n"
    'frameworks: [{name: mxnet, version: "1.9.0", variants: [cu100]}]\n'
    "workloads: [{name: mlp, model: mlp, dataset: synthetic, batch_sizes: [32]}]\n"
)


class OneGpuNodeCluster:
    """`Slurm` as the cluster allocator asks it: a controller answers, one partition of one GPU node."""

    def check_cluster(self) -> None:
        return None

    def nodes(self, partition):
        return "gpu", {"node7": Size(cpus=64, memory_mb=256_000, gpus=4)}


def cu100_request(tmp_path, backend: BackendName) -> RunRequest:
    spec = tmp_path / "s.yaml"
    spec.write_text(CU100_SPEC)
    return RunRequest(spec, Filters(system="1_gpu"), None, str(tmp_path / "r.db"), tmp_path, tmp_path, backend=backend)


def test_a_local_run_checks_this_hosts_gpus_and_a_slurm_run_leaves_it_to_each_node(tmp_path, monkeypatch):
    monkeypatch.setattr("orchestrator.backends.hostinfo.gpus", lambda: [H100])  # this host: a Hopper GPU
    monkeypatch.setattr("orchestrator.backends.local.host_gpu_ids", lambda: ((0,), None))
    monkeypatch.setattr("orchestrator.backends.slurm.Slurm", OneGpuNodeCluster)
    with pytest.raises(UsageError, match="cannot run on this host's GPUs: benchmatrix/mxnet:1.9.0-cu100: GPU 0"):
        prepare(cu100_request(tmp_path, BackendName.LOCAL))
    prepared = prepare(cu100_request(tmp_path, BackendName.SLURM))  # the submit host's GPU says nothing of the node's
    assert prepared.notes == (
        "the slurm backend's machines are known only as each cell starts: the CUDA limits of "
        "benchmatrix/mxnet:1.9.0-cu100 are checked there, against that machine's GPUs",
    )
