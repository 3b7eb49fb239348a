"""Which cell may start now, and on which GPUs and CPUs. Pure logic: no engine, no clock.

By default a cell has the host to itself (measurement fidelity): one cell at a time, on its
spec's devices. With `pack`, cells that need fewer GPUs than the host has run side by side on
disjoint devices (each with an equal share of the CPUs), and CPU cells run side by side on
disjoint cpusets of `cpus_per_cell` CPUs. Cells start in plan order: when the next cell does not
fit, nothing behind it jumps the queue, so a large cell is never starved by small ones.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Optional

from orchestrator.errors import UsageError
from orchestrator.run.devices import planned_device_ids
from orchestrator.run.plan import Cell

DEFAULT_CPUS_PER_CELL = 4


@dataclass(frozen=True)
class Resources:
    """What the host offers: GPU device ids (NVML indices) and CPU ids."""

    gpus: tuple[int, ...]
    cpus: tuple[int, ...]


@dataclass(frozen=True)
class Placement:
    """Where one cell runs: its GPUs (empty for CPU cells) and its cpuset (None: no pinning)."""

    device_ids: tuple[int, ...] = ()
    cpuset: Optional[str] = None


def parse_cpuset(text: str) -> tuple[int, ...]:
    """'0-3,8' → (0, 1, 2, 3, 8); the spec validated the pattern already."""
    cpus: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus += range(int(low), int(high or low) + 1)
    return tuple(sorted(set(cpus)))


def format_cpuset(cpus: tuple[int, ...]) -> str:
    """(0, 1, 2, 3, 8) → '0-3,8', the form the engine takes."""
    ranges = []
    for _, run in itertools.groupby(enumerate(sorted(cpus)), key=lambda pair: pair[1] - pair[0]):
        ids = [cpu for _, cpu in run]
        ranges.append(str(ids[0]) if len(ids) == 1 else f"{ids[0]}-{ids[-1]}")
    return ",".join(ranges)


class Allocator:
    """Hands out disjoint devices and CPUs; `place` says where the next cell runs, or None (wait)."""

    def __init__(self, resources: Resources, pack: bool = False, cpus_per_cell: int = DEFAULT_CPUS_PER_CELL) -> None:
        if cpus_per_cell < 1:
            raise UsageError(f"--cpus-per-cell must be at least 1, got {cpus_per_cell}")
        self.resources = resources
        self.pack = pack
        self.cpus_per_cell = cpus_per_cell
        self.busy_gpus: set[int] = set()
        self.busy_cpus: set[int] = set()
        self.running = 0

    def check(self, cells: list[Cell]) -> None:
        """Refuse, before anything starts, a cell this host can never run."""
        host = self.resources.gpus
        for cell in cells:
            if cell.gpus > len(host):
                raise UsageError(
                    f"system {cell.system} needs {cell.gpus} GPU(s); this host has {len(host)}"
                    + (f" (ids {', '.join(map(str, host))})" if host else "")
                    + ": run `python -m orchestrator doctor`"
                )
            missing = sorted(set(cell.device_ids or ()) - set(host))
            if missing:
                raise UsageError(f"system {cell.system}: device_ids {missing} are not on this host (ids {list(host)})")
            pool = self._cpu_pool(cell)
            if self.pack and not cell.gpus and self.cpus_per_cell > len(pool):
                raise UsageError(
                    f"--cpus-per-cell {self.cpus_per_cell}: system {cell.system} has only {len(pool)} CPUs to pack"
                )

    def place(self, cell: Cell) -> Optional[Placement]:
        if not self.pack:
            if self.running:
                return None
            devices = cell.device_ids if cell.device_ids is not None else self.resources.gpus[: cell.gpus]
            return self._take(Placement(device_ids=tuple(devices), cpuset=cell.cpuset))
        if cell.gpus:
            free = self._free_devices(cell)
            if free is None:
                return None
            pool = self._cpu_pool(cell)
            share = len(pool) // len(self.resources.gpus) * cell.gpus
            cpus = self._free_cpus(pool, share) if share else ()
            return self._take(Placement(device_ids=free, cpuset=format_cpuset(cpus) if cpus else None))
        cpus = self._free_cpus(self._cpu_pool(cell), self.cpus_per_cell)
        if not cpus:
            return None
        return self._take(Placement(cpuset=format_cpuset(cpus)))

    def release(self, placement: Placement) -> None:
        self.busy_gpus -= set(placement.device_ids)
        if self.pack and placement.cpuset:
            self.busy_cpus -= set(parse_cpuset(placement.cpuset))
        self.running -= 1

    def _take(self, placement: Placement) -> Placement:
        self.busy_gpus |= set(placement.device_ids)
        if self.pack and placement.cpuset:
            self.busy_cpus |= set(parse_cpuset(placement.cpuset))
        self.running += 1
        return placement

    def _cpu_pool(self, cell: Cell) -> tuple[int, ...]:
        return parse_cpuset(cell.cpuset) if cell.cpuset else self.resources.cpus

    def _free_devices(self, cell: Cell) -> Optional[tuple[int, ...]]:
        if cell.device_ids is not None:
            wanted = planned_device_ids(cell)
            return None if self.busy_gpus & set(wanted) else wanted
        free = [gpu for gpu in self.resources.gpus if gpu not in self.busy_gpus]
        return tuple(free[: cell.gpus]) if len(free) >= cell.gpus else None

    def _free_cpus(self, pool: tuple[int, ...], count: int) -> tuple[int, ...]:
        free = [cpu for cpu in pool if cpu not in self.busy_cpus]
        return tuple(free[:count]) if len(free) >= count else ()
