"""Packing is pure logic: disjoint devices and cpusets, plan order kept, impossible cells refused."""

from __future__ import annotations

import dataclasses

import pytest

from bench import cells
from orchestrator.errors import UsageError
from orchestrator.run.plan import Cell
from orchestrator.run.scheduler import Allocator, Placement, Resources, format_cpuset, parse_cpuset

# An mxnet 1.9.1 mlp cell on the CPU (test_execute, the backends' and devices' tests build on it too).
BASE = dataclasses.replace(cells.PLAN, version="1.9.1", image="benchmatrix/mxnet:1.9.1-cpu")


def cell(**changes) -> Cell:
    return dataclasses.replace(BASE, **changes)


def gpu_cell(gpus: int, **changes) -> Cell:
    return cell(system=f"{gpus}_gpu", system_kind="gpu", variant="gpu", gpus=gpus, **changes)


FOUR_GPUS = Resources(gpus=(0, 1, 2, 3), cpus=tuple(range(16)))


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0", (0,)), ("0-3", (0, 1, 2, 3)), ("0-1,4,6-7", (0, 1, 4, 6, 7)), ("3,1,2", (1, 2, 3))],
)
def test_cpuset_round_trip(text, cpus):
    assert parse_cpuset(text) == cpus
    assert parse_cpuset(format_cpuset(cpus)) == cpus


def test_format_cpuset_compresses_runs():
    assert format_cpuset((0, 1, 2, 3, 8, 10, 11)) == "0-3,8,10-11"


def test_unpacked_cells_run_one_at_a_time_on_their_spec_devices():
    allocator = Allocator(FOUR_GPUS)
    first = allocator.place(gpu_cell(4))
    assert first == Placement(device_ids=(0, 1, 2, 3), cpuset=None)
    assert allocator.place(gpu_cell(1)) is None  # the host is the running cell's alone
    allocator.release(first)
    assert allocator.place(gpu_cell(2, device_ids=(2, 3))) == Placement(device_ids=(2, 3))


def test_unpacked_cpu_cell_keeps_the_spec_cpuset():
    allocator = Allocator(FOUR_GPUS)
    assert allocator.place(cell(cpuset="0-1")) == Placement(cpuset="0-1")
    assert allocator.place(cell()) is None


def test_packed_single_gpu_cells_run_side_by_side_on_disjoint_devices():
    allocator = Allocator(FOUR_GPUS, pack=True)
    placements = [allocator.place(gpu_cell(1, repeat=r)) for r in range(4)]
    assert [p.device_ids for p in placements] == [(0,), (1,), (2,), (3,)]
    # each gets an equal, disjoint share of the CPUs: 16 CPUs / 4 GPUs
    cpusets = [set(parse_cpuset(p.cpuset)) for p in placements]
    assert all(len(cpus) == 4 for cpus in cpusets)
    assert set.union(*cpusets) == set(range(16))
    assert allocator.place(gpu_cell(1, repeat=4)) is None
    allocator.release(placements[2])
    assert allocator.place(gpu_cell(1, repeat=4)).device_ids == (2,)


def test_packed_cells_that_need_every_gpu_still_run_alone():
    allocator = Allocator(FOUR_GPUS, pack=True)
    first = allocator.place(gpu_cell(4))
    assert first.device_ids == (0, 1, 2, 3)
    assert allocator.place(gpu_cell(4, repeat=1)) is None
    allocator.release(first)
    assert allocator.place(gpu_cell(4, repeat=1)).device_ids == (0, 1, 2, 3)


def test_packed_two_gpu_cells_pair_up():
    allocator = Allocator(Resources(gpus=tuple(range(8)), cpus=tuple(range(8))), pack=True)
    placements = [allocator.place(gpu_cell(2, repeat=r)) for r in range(4)]
    assert [p.device_ids for p in placements] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert [p.cpuset for p in placements] == ["0-1", "2-3", "4-5", "6-7"]


def test_packed_pinned_devices_wait_for_exactly_those():
    allocator = Allocator(FOUR_GPUS, pack=True)
    held = allocator.place(gpu_cell(1, device_ids=(1,)))
    assert held.device_ids == (1,)
    assert allocator.place(gpu_cell(1, device_ids=(1,), repeat=1)) is None
    assert allocator.place(gpu_cell(1, repeat=2)).device_ids == (0,)


def test_packed_cpu_cells_get_disjoint_cpusets_of_the_asked_size():
    allocator = Allocator(Resources(gpus=(), cpus=tuple(range(8))), pack=True, cpus_per_cell=3)
    first, second = allocator.place(cell()), allocator.place(cell(repeat=1))
    assert (first.cpuset, second.cpuset) == ("0-2", "3-5")
    assert allocator.place(cell(repeat=2)) is None  # 2 CPUs left, 3 needed
    allocator.release(first)
    assert allocator.place(cell(repeat=2)).cpuset == "0-2"


def test_packed_cpu_cells_pack_within_the_system_cpuset():
    allocator = Allocator(Resources(gpus=(), cpus=tuple(range(8))), pack=True, cpus_per_cell=2)
    placements = [allocator.place(cell(cpuset="4-7", repeat=r)) for r in range(3)]
    assert [p.cpuset if p else None for p in placements] == ["4-5", "6-7", None]


def test_a_cell_needing_more_gpus_than_the_host_has_is_refused_up_front():
    with pytest.raises(UsageError, match=r"needs 4 GPU\(s\); this host has 1 \(ids 0\).*doctor"):
        Allocator(Resources(gpus=(0,), cpus=(0, 1))).check([gpu_cell(4)])
    with pytest.raises(UsageError, match="needs 1 GPU.*this host has 0"):
        Allocator(Resources(gpus=(), cpus=(0, 1))).check([gpu_cell(1)])


def test_device_ids_missing_on_the_host_are_refused():
    with pytest.raises(UsageError, match=r"device_ids \[5\] are not on this host"):
        Allocator(FOUR_GPUS).check([gpu_cell(2, device_ids=(0, 5))])


def test_cpus_per_cell_larger_than_the_pool_is_refused():
    with pytest.raises(UsageError, match="--cpus-per-cell 4: system cpu has only 2 CPUs"):
        Allocator(Resources(gpus=(), cpus=(0, 1)), pack=True, cpus_per_cell=4).check([cell()])
    with pytest.raises(UsageError, match="at least 1"):
        Allocator(FOUR_GPUS, cpus_per_cell=0)
