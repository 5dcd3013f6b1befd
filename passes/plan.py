"""plan(graph) -> Program: operator order, aliasing/in-place, lifetimes, arena placement.

The graph-to-graph passes (fold_pad, strip_edge_quantization) run before this, in the
compiler's pipeline; plan only schedules and places memory.
"""
from __future__ import annotations

from typing import Callable, Sequence

from mcuc.ir import Graph, MCUCError, Op, Tensor
from mcuc.ir.program import Buffer, Program, ScratchRequest, Step

from .aliasing import Storage, plan_storage
from .allocate import Placement, allocate
from .lifetimes import Lifetime, lifetimes, live_bound

ScratchFn = Callable[[Op, bool], Sequence[ScratchRequest]]


def plan(graph: Graph, scratch: ScratchFn | None = None, *, optimize: bool = True) -> Program:
    """Schedule `graph` and place every activation and scratch buffer in one arena.

    `scratch(op, in_place)` is the backend's list of temporaries for an op (None: none).
    With `optimize`, several placement heuristics are tried and the smallest arena wins.
    """
    graph.verify()
    storage = plan_storage(graph)
    return build_program(graph, storage, scratch, optimize=optimize)


def build_program(graph: Graph, storage: Storage, scratch: ScratchFn | None,
                  *, optimize: bool) -> Program:
    """Lifetimes and placement for `graph` in its given order with the given storage."""
    items = lifetimes(graph, storage, scratch)
    steps = len(graph.ops)
    placement = allocate(items, steps, optimize=optimize)
    return assemble(graph, storage, items, placement)


def assemble(graph: Graph, storage: Storage, items: Sequence[Lifetime],
             placement: Placement) -> Program:
    buffers: list[Buffer] = []
    scratch_of: dict[int, list[tuple[int, Buffer]]] = {}
    root_offset: dict[Tensor, int] = {}
    for item in items:
        at = placement.offsets[item.name]
        buf = Buffer(item.name, at, item.size, item.first, item.last, item.align, item.kind,
                     tuple(t.name for t in item.tensors))
        buffers.append(buf)
        if item.kind == "scratch":
            scratch_of.setdefault(item.step, []).append((item.request, buf))
        else:
            root_offset[item.root] = at
    offsets = {t: root_offset[root] + delta for t, (root, delta) in storage.home.items()}
    missing = [t.name for t in graph.activations if t not in offsets]
    if missing:
        raise MCUCError(f"graph {graph.name!r}: no arena offset planned for {', '.join(missing)}")
    steps = tuple(
        Step(op, tuple(b for _, b in sorted(scratch_of.get(i, []), key=lambda rb: rb[0])),
             in_place=i in storage.in_place, in_place_input=storage.in_place.get(i, 0),
             alias=i in storage.alias_steps)
        for i, op in enumerate(graph.ops))
    buffers.sort(key=lambda b: (b.first, b.offset))
    return Program(graph, steps, offsets, placement.arena_bytes, tuple(buffers),
                   live_bound(items, len(graph.ops)), notes={"placement": placement.method})
