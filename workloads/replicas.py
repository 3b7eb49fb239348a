"""Data-parallel replicas (``--replicas N``): which replica this process is, how a global batch is
split, and PyTorch's launch of one process per replica.

With N replicas every step trains N × ``--batch-size`` samples (the global batch), split evenly
over N devices, as users of each framework do it: ``tf.distribute.MirroredStrategy``, PyTorch
DDP under torchrun, Gluon with a list of contexts and kvstore ``device``, Keras 3's
``DataParallel`` distribution on JAX and keras-mxnet's ``multi_gpu_model``. On a GPU host each
replica is a GPU. Without GPUs the replicas are CPU devices sharing the host's cores: that runs
the same code path (tests use it) but its figures say nothing about multi-GPU speed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

# Set by torchrun in each worker process it starts.
RANK_VARIABLE = "RANK"
WORLD_VARIABLE = "WORLD_SIZE"
LOCAL_RANK_VARIABLE = "LOCAL_RANK"


def rank() -> int:
    """This process's rank among torchrun's workers; 0 outside torchrun."""
    return int(os.environ.get(RANK_VARIABLE, "0"))


def is_primary() -> bool:
    """Only the first process logs, measures and writes the result."""
    return rank() == 0


def under_torchrun() -> bool:
    return WORLD_VARIABLE in os.environ


def share_bounds(samples: int, replicas: int, replica: int) -> tuple[int, int]:
    """Where replica ``replica``'s contiguous part of a global batch starts and stops: the parts'
    sizes differ by at most one, the larger ones first (as ``numpy.array_split`` cuts)."""
    size, larger = divmod(samples, replicas)
    start = replica * size + min(replica, larger)
    return start, start + size + (replica < larger)


def usable_samples(samples: int, replicas: int) -> int:
    """Samples kept so that every replica gets at least one sample of every step, the last included."""
    return samples - samples % replicas


def torchrun(argv: list[str], replicas: int) -> int:
    """Run this same command line under torchrun, one worker process per replica; its exit code.

    The rendezvous and the collectives stay on the loopback interface, the only one a cell
    container without a network has (torchrun's ``--standalone`` would use the host name, which
    such a container cannot resolve).
    """
    env = {**os.environ}
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    env.setdefault("NCCL_SOCKET_IFNAME", "lo")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc-per-node={replicas}",
        "--master-addr=127.0.0.1",
        f"--master-port={_free_port()}",
        "-m",
        "workloads",
        *argv,
    ]
    print(f"benchmatrix: {replicas} PyTorch DDP processes under torchrun", flush=True)
    return subprocess.run(command, env=env, check=False).returncode


def _free_port() -> int:
    """A loopback port nobody listens on now, for torchrun's rendezvous store."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
