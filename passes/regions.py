"""Several memory regions (`--memory NAME:SIZE[:COST],...`): the pass that moves every
arena buffer of a planned Program into one region, so that each region's buffers fit
its capacity and the estimated time of their accesses is small.

The plan itself (order, storage groups, in-place and overlapping steps, patch stages) is
the one-arena plan; this pass only chooses a region for each placed buffer (a storage
group moves as one piece, so every placement rule still holds) and places the buffers of
each region from its offset 0 with the arena allocator. The regions then follow one
another in the program's address space (ir/program.PlacedRegion), and backends map each
to its own array.

Cost model: one inference moves `access_bytes` through a buffer (each tensor written
once by each step that produces it and read once by each step that reads it; a kernel's
scratch written and read once); a byte moved in a region costs that region's COST.
Buffers are taken by bytes moved per byte held, densest first, and each goes to the
cheapest region where it still fits (a greedy knapsack: not always the optimum).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from mcuc.ir import MCUCError, Tensor
from mcuc.ir.tensor import quoted
from mcuc.ir.program import (REGION_ADDRESS_ALIGN, Alias, Buffer, PatchLoop, PlacedRegion, Program, Step,
                             caller_buffer_bases)

from .allocate import Placement, align_up, allocate, place
from .lifetimes import Lifetime, Piece, live_bound

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SIZE = re.compile(r"^(\d+)\s*(k|kib|kb|m|mib|mb)?$", re.IGNORECASE)
_UNITS = {None: 1, "k": 1024, "kib": 1024, "kb": 1024, "m": 1024 * 1024, "mib": 1024 * 1024, "mb": 1024 * 1024}


@dataclass(frozen=True)
class MemoryRegion:
    """A region the user offers: `capacity` bytes, each byte access costing `cost`."""

    name: str
    capacity: int
    cost: float = 1.0


def parse_memory(spec: str) -> tuple[MemoryRegion, ...]:
    """`NAME:SIZE[:COST],...` (SIZE in bytes, or with K/KiB or M/MiB: 1024-based; COST a
    positive number, 1 when left out), e.g. `dtcm:64K:1,sram:512K:3`."""
    regions = []
    for part in spec.split(","):
        fields = [f.strip() for f in part.split(":")]
        if len(fields) not in (2, 3) or not all(fields):
            raise MCUCError(f"--memory {spec!r}: {part.strip()!r} is not NAME:SIZE[:COST] "
                            f"(e.g. dtcm:64K:1,sram:512K:3)")
        name, size = fields[0], fields[1]
        if not _NAME.match(name):
            raise MCUCError(f"--memory {spec!r}: region name {name!r} must be a lowercase C identifier "
                            f"of at most 32 characters (it names the region's array and section macro)")
        match = _SIZE.match(size)
        capacity = int(match[1]) * _UNITS[match[2] and match[2].lower()] if match else 0
        if capacity <= 0:
            raise MCUCError(f"--memory {spec!r}: region {name!r} has size {size!r}; give a positive number of "
                            f"bytes, optionally with K or M (1024-based)")
        cost = 1.0
        if len(fields) == 3:
            try:
                cost = float(fields[2])
            except ValueError:
                cost = -1.0
            if not (0 < cost < float("inf")):
                raise MCUCError(f"--memory {spec!r}: region {name!r} has cost {fields[2]!r}; give a positive "
                                f"number (the relative time of one byte's access there)")
        regions.append(MemoryRegion(name, capacity, cost))
    names = [r.name for r in regions]
    if len(set(names)) != len(names):
        raise MCUCError(f"--memory {spec!r}: region names repeat ({', '.join(names)})")
    return tuple(regions)


def _buffer_key(b: Buffer) -> str:
    """The unit a buffer moves with: its storage group, or itself (scratch)."""
    return b.group if b.kind == "tensor" else b.name


def _buffer_items(program: Program) -> tuple[list[Lifetime], dict[str, list[Buffer]], dict[str, int]]:
    """Every arena buffer of the plan as one Lifetime to place (a storage group with its
    members as pieces, or one scratch buffer), the Buffers of each, and where the plan put
    each (its origin: its lowest offset rounded down to its alignment)."""
    groups: dict[str, list[Buffer]] = {}
    for b in program.buffers:
        groups.setdefault(_buffer_key(b), []).append(b)
    items, origins = [], {}
    for name, members in groups.items():
        align = max(b.align for b in members)
        origin = origins[name] = min(b.offset for b in members) // align * align
        pieces = tuple(Piece(b.offset - origin, b.size, b.first, b.last) for b in members)
        size = max(b.end for b in members) - origin
        items.append(Lifetime(name, size, min(b.first for b in members), max(b.last for b in members),
                              pieces, align, members[0].kind))
    return items, groups, origins


def access_bytes(program: Program) -> dict[str, int]:
    """Bytes each arena buffer (by storage group, or scratch name) moves in one inference
    (the module's cost model; a step that moves no bytes, an Alias, counts nothing)."""
    moves: dict[Tensor, int] = {}
    for step in program.steps:
        if isinstance(step.placement, Alias):
            continue
        for t in (*step.op.inputs, *step.op.outputs):
            if t is not None and not t.is_constant:
                moves[t] = moves.get(t, 0) + t.nbytes
    by_name = {t.name: n for t, n in moves.items()}
    result: dict[str, int] = {}
    for b in program.buffers:
        key = _buffer_key(b)
        result[key] = result.get(key, 0) + (by_name.get(b.name, 0) if b.kind == "tensor" else 2 * b.size)
    return result


def place_in_regions(program: Program, regions: tuple[MemoryRegion, ...],
                     weights: tuple[str, int] | None = None) -> Program:
    """`program` with every arena buffer moved into one of `regions` (module docstring).
    `weights` (`--weights-in-ram`): (region name, bytes of the model's constant arrays)
    that region holds beside its buffers. An MCUCError when they cannot hold the plan,
    naming what would."""
    if not regions:
        return program
    if weights is not None:
        name, size = weights
        if name not in [r.name for r in regions]:
            raise MCUCError(f"--weights-in-ram {name!r} names no region of --memory "
                            f"({', '.join(r.name for r in regions)})")
        region = next(r for r in regions if r.name == name)
        if size > region.capacity:
            raise MCUCError(f"--weights-in-ram {name}: the weights take {size} B, more than region {name!r} "
                            f"holds ({region.capacity} B); give it at least {size} B plus the buffers it "
                            f"should hold, or leave the weights in flash")
        regions = tuple(replace(r, capacity=r.capacity - size) if r.name == name else r for r in regions)
    placed = _place(program, regions)
    if weights is None:
        return placed
    restored = tuple(replace(p, capacity=p.capacity + weights[1], weights_bytes=weights[1]) if p.name == weights[0]
                     else p for p in placed.regions)
    return replace(placed, regions=restored)


def _place(program: Program, regions: tuple[MemoryRegion, ...]) -> Program:
    items, members, origins = _buffer_items(program)
    moved = access_bytes(program)
    # The greedy may fill the cheap regions so that the rest fits nowhere although one
    # region holds the whole plan: then it tries again, offering the regions cheaper than
    # that one less and less of their capacity; at the last, that region takes the whole
    # plan as it was (it fits: its capacity is at least the plan's arena).
    holds_all = [k for k in range(len(regions)) if regions[k].capacity >= program.arena_bytes]
    fallback = min(holds_all, key=lambda k: (regions[k].cost, k)) if holds_all else None
    local: dict[int, Placement] = {}
    for share in (1.0, 0.5, 0.25, 0.125) if fallback is not None else (1.0,):
        limits = [r.capacity if fallback is None or r.cost >= regions[fallback].cost else int(r.capacity * share)
                  for r in regions]
        chosen, misfit = _assign(items, moved, len(program.steps), regions, limits)
        if misfit is None:
            local = {k: allocate(chosen[k], len(program.steps)) for k in chosen if chosen[k]}
            break
    else:
        if fallback is None:
            raise _infeasible(program, regions, misfit)
        local = {fallback: Placement(origins, program.arena_bytes, "one arena")}
    placed: list[PlacedRegion] = []
    new_origin: dict[str, int] = {}
    at = 0
    for k, region in enumerate(regions):
        base = align_up(at, REGION_ADDRESS_ALIGN) if k else 0
        size = local[k].arena_bytes if k in local else 0
        if size > region.capacity:  # allocate never exceeds the greedy fit _fits saw
            raise MCUCError(f"--memory: region {region.name!r} would need {size} B of its {region.capacity} B")
        for name, offset in (local[k].offsets.items() if k in local else ()):
            new_origin[name] = base + offset
        placed.append(PlacedRegion(region.name, base, size, region.capacity, region.cost))
        at = base + size
    shift = {b.name: new_origin[key] - origins[key] for key, bs in members.items() for b in bs}
    return _moved(program, shift, tuple(placed), at)


def _assign(items: list[Lifetime], moved: dict[str, int], steps: int, regions: tuple[MemoryRegion, ...],
            limits: list[int]) -> tuple[dict[int, list[Lifetime]], Lifetime | None]:
    """The greedy choice of a region per item (densest bytes `moved` per byte held first,
    cheapest region where it fits within `limits`), and the first item that fits nowhere
    (None: all placed)."""
    by_cost = sorted(range(len(regions)), key=lambda k: (regions[k].cost, k))
    chosen: dict[int, list[Lifetime]] = {k: [] for k in range(len(regions))}
    for item in sorted(items, key=lambda it: (-moved.get(it.name, 0) / max(it.size, 1), -it.size, it.name)):
        for k in by_cost:
            if _fits(chosen[k] + [item], steps, limits[k]):
                chosen[k].append(item)
                break
        else:
            return chosen, item
    return chosen, None


def _fits(items: list[Lifetime], steps: int, capacity: int) -> bool:
    if sum(align_up(it.size, it.align) + it.align for it in items) <= capacity:
        return True  # any placement fits in the sum of the sizes
    if live_bound(items, steps) > capacity:
        return False
    return place(items).arena_bytes <= capacity or allocate(items, steps).arena_bytes <= capacity


def _infeasible(program: Program, regions: tuple[MemoryRegion, ...], item: Lifetime) -> MCUCError:
    largest = max(r.capacity for r in regions)
    return MCUCError(f"--memory: {item.kind} buffer {quoted(item.name)} ({item.size} B) fits in no region beside "
                     f"the others. One arena needs {program.arena_bytes} B (live-set bound "
                     f"{program.live_bound_bytes} B); the regions hold {sum(r.capacity for r in regions)} B for "
                     f"buffers, the largest {largest} B: give one region at least {program.arena_bytes} B")


def _moved(program: Program, shift: dict[str, int], regions: tuple[PlacedRegion, ...], arena_bytes: int) -> Program:
    """The Program with each arena buffer moved by `shift` (by buffer name) and the caller
    buffers after the new arena; PatchLoop steps lowered again for the new offsets."""
    from .patch import lower_patch_loops

    offsets: dict[Tensor, int] = {}
    bases = caller_buffer_bases(arena_bytes, [b.tensor for b in program.caller_buffers])
    new_base = {b.base: base for b, base in zip(program.caller_buffers, bases)}
    caller = tuple(replace(b, base=new_base[b.base]) for b in program.caller_buffers)
    for t, at in program.offsets.items():
        outside = program.caller_buffer_at(at)
        if t.state:
            continue  # laid out again after the moved arena and caller buffers
        if outside is not None:
            offsets[t] = at - outside.base + new_base[outside.base]
        elif t.name in shift:
            offsets[t] = at + shift[t.name]
        else:
            raise MCUCError(f"graph {program.graph.name!r}: tensor {t.name!r} has an arena offset but no buffer "
                            f"of the plan, so no region can hold it")
    buffers = tuple(sorted((replace(b, offset=b.offset + shift[b.name]) for b in program.buffers),
                           key=lambda b: (b.first, b.offset)))
    steps = []
    for s in program.steps:
        scratch = tuple(replace(b, offset=b.offset + shift[b.name]) for b in s.scratch)
        steps.append(Step(s.op, scratch, s.placement) if isinstance(s, PatchLoop) else replace(s, scratch=scratch))
    notes = {**program.notes, "one_arena_bytes": program.arena_bytes}
    result = replace(program, steps=tuple(steps), offsets=offsets, arena_bytes=arena_bytes, buffers=buffers,
                     notes=notes, caller_buffers=caller, regions=regions)
    result = result.with_state_area()
    return lower_patch_loops(result) if any(isinstance(s, PatchLoop) for s in program.steps) else result


def buffer_regions(program: Program) -> dict[str, int]:
    """The index of the region holding each arena buffer (by buffer name)."""
    return {b.name: (program.region_at(b.offset) or (0,))[0] for b in program.buffers}


def access_cost(program: Program) -> dict[str, float]:
    """The estimated access cost of one inference as planned ("planned") and with every
    buffer in the costliest region ("slowest"): access bytes times the region's cost."""
    if not program.regions:
        return {}
    moved = access_bytes(program)
    by_buffer = buffer_regions(program)
    region_of = {_buffer_key(b): by_buffer[b.name] for b in program.buffers}
    planned = sum(n * program.regions[region_of[name]].cost for name, n in moved.items())
    slowest = sum(moved.values()) * max(r.cost for r in program.regions)
    return {"planned": planned, "slowest": slowest}
