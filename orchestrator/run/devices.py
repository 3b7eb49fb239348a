"""GPU device requests: which devices a cell asks the engine for, and how its batch scales with them.

A spec's batch sizes are per GPU; data-parallel training on N GPUs processes N × that per step, so
the global batch is per-GPU batch × GPUs. The request names device ids (NVML indices on the host),
the SDK form of `docker run --gpus '"device=0,1"'`; it needs the NVIDIA Container Toolkit.
"""

from __future__ import annotations

from collections.abc import Sequence

from docker.types import DeviceRequest

from orchestrator.run.plan import Cell


def planned_device_ids(cell: Cell) -> tuple[int, ...]:
    """The devices a cell gets when it has the host to itself: its spec's ids, else the first N."""
    if cell.gpus == 0:
        return ()
    return cell.device_ids if cell.device_ids is not None else tuple(range(cell.gpus))


def device_request(device_ids: Sequence[int]) -> DeviceRequest:
    """Exactly these GPUs, with the `gpu` capability (compute + utility libraries mounted by the toolkit)."""
    return DeviceRequest(device_ids=[str(index) for index in device_ids], capabilities=[["gpu"]])


def describe_request(device_ids: Sequence[int]) -> str:
    """The request as the docker CLI spells it, for plans and logs; empty for a CPU cell."""
    if not device_ids:
        return ""
    return "--gpus '\"device=" + ",".join(str(index) for index in device_ids) + "\"'"


def global_batch(cell: Cell) -> int:
    """Samples per training step over all of a cell's GPUs (a CPU cell: its batch size)."""
    return cell.batch_size * max(cell.gpus, 1)


def plan_fields(cell: Cell) -> dict:
    """What `plan` adds to a cell: the global batch and the device request it would run with."""
    devices = planned_device_ids(cell)
    return {
        "global_batch": global_batch(cell),
        "device_ids": list(devices),
        "device_request": describe_request(devices),
    }
