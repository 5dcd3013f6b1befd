"""plan(graph) -> Program: operator order, aliasing/in-place, lifetimes, arena placement.

The graph-to-graph passes (fold_pad, strip_edge_quantization) run before this, in the
compiler's pipeline; plan only schedules and places memory.
"""
from __future__ import annotations

from typing import Callable, Sequence

from mcuc.ir import Graph, MCUCError, Op, Tensor
from mcuc.ir.ops.kinds import DEPTHWISE_CONV_2D
from mcuc.ir.program import (Buffer, CallerBuffer, InPlace, Overlap, Program, ScratchRequest, Step,
                             caller_buffer_bases, state_layout)
from mcuc.ir.program_check import depthwise_shift_allowed, is_overlappable_conv

from .aliasing import Storage, conv_overlap_shift, plan_storage
from .allocate import Placement, allocate, choose_offset, forbidden_intervals
from .lifetimes import Lifetime, lifetimes, live_bound
from .order import order_for_memory
from .report import live_bytes

ScratchFn = Callable[[Op, bool], Sequence[ScratchRequest]]


def plan(graph: Graph, scratch: ScratchFn | None = None, *, optimize: bool = True,
         overlap_pointwise: bool = True) -> Program:
    """Schedule `graph` and place every activation and scratch buffer in one arena.

    `scratch(op, in_place)` is the backend's list of temporaries for an op (None: none).
    With `optimize`, the least-peak operator order (order.py) is tried next to the given
    one and several placement heuristics; the smallest arena wins (Program.graph holds
    the chosen order).
    `overlap_pointwise=False` plans no Overlap convolution (CONV_2D, depthwise with
    multiplier > 1) for a backend whose kernels do not produce output pixels in
    increasing order.
    """
    graph.verify()
    best = _plan_in_order(graph, scratch, optimize, overlap_pointwise)
    if optimize:
        reordered = order_for_memory(graph, scratch)
        if any(a is not b for a, b in zip(reordered.ops, graph.ops)):
            other = _plan_in_order(reordered, scratch, optimize, overlap_pointwise)
            if other.arena_bytes < best.arena_bytes:
                best = other
    return best


def _plan_in_order(graph: Graph, scratch: ScratchFn | None, optimize: bool,
                   overlap_pointwise: bool) -> Program:
    best = build_program(graph, plan_storage(graph), scratch, optimize=optimize)
    if not overlap_pointwise:
        return best
    best = _with_overlapping_pointwise(graph, best, scratch, optimize=optimize)
    if optimize:  # every eligible conv overlapping: sometimes better still
        every = build_program(graph, plan_storage(graph, pointwise=None), scratch, optimize=optimize)
        if every.arena_bytes < best.arena_bytes:
            best = every
        best = _with_shifted_depthwise(graph, best, scratch)
    return best


# Plans built at most while looking for depthwise shifts (each is a full placement).
MAX_SHIFT_TRIALS = 40


def _with_shifted_depthwise(graph: Graph, program: Program, scratch: ScratchFn | None) -> Program:
    """Let in-place depthwise convs write their output a few pixels after or before their
    input (InPlace.shift) where that shrinks the arena.

    A chain of overlapping convolutions moves its tensors down by each conv's overlap
    shift, so the chain's storage group spreads and scratch no longer fits beside it;
    an in-place depthwise between them can move the data back up. Tried, each kept only
    if the arena shrinks: every depthwise undoing its producer's overlap shift (rounded
    up to whole pixels), the same pixel count for every depthwise, then one step at a
    time around the peak."""
    if program.arena_bytes <= program.live_bound_bytes:
        return program
    pointwise = frozenset(i for i, s in enumerate(program.steps)
                          if isinstance(s.placement, Overlap) and is_overlappable_conv(s.op))
    steps = [i for i, s in enumerate(program.steps)
             if isinstance(s.placement, InPlace) and s.op.kind == DEPTHWISE_CONV_2D]
    if not steps:
        return program
    candidates = {i: _depthwise_shift_candidates(graph, i, pointwise) for i in steps}
    best, wished = program, {i: program.steps[i].placement.shift for i in steps}
    trials = [0]

    def attempt(shifts: dict[int, int]) -> None:
        nonlocal best, wished
        if trials[0] >= MAX_SHIFT_TRIALS:
            return
        trials[0] += 1
        trial = build_program(graph, plan_storage(graph, pointwise=pointwise, depthwise_shifts=shifts),
                              scratch, optimize=True)
        if trial.arena_bytes < best.arena_bytes:
            best, wished = trial, dict(shifts)

    undo = {i: c[0] for i, c in candidates.items() if c and c[0] > 0}
    if undo:
        attempt(undo)
    for pixels in (1, -1, 2, -2):
        attempt({i: pixels * graph.ops[i].inputs[0].shape[-1] for i in steps})
    live = live_bytes(best)
    near_peak = [i for i in sorted(steps, key=lambda s: -live[s]) if live[i] >= 0.9 * max(live)]
    for i in near_peak[:8]:
        for shift in (0, *candidates[i]):
            if shift != wished.get(i, 0):
                attempt({**wished, i: shift})
    if best is not program:  # the unshifted figures, for reports (the bound moves with the storage)
        best.notes["unshifted"] = {"arena_bytes": program.arena_bytes,
                                   "live_bound_bytes": program.live_bound_bytes}
    return best


def _depthwise_shift_candidates(graph: Graph, index: int, pointwise: frozenset[int]) -> list[int]:
    """Nonzero shifts (whole pixels, allowed for this op) worth trying for the in-place
    depthwise op `index`: first the shift undoing its producer's overlap (when its input
    comes from an overlapping conv), then one and two pixels either way."""
    op = graph.ops[index]
    channels = op.inputs[0].shape[-1]
    shifts: list[int] = []
    producer = next((j for j, p in enumerate(graph.ops[:index]) if op.inputs[0] in p.outputs), None)
    if producer in pointwise:
        drift = conv_overlap_shift(graph.ops[producer])
        shifts += [-(-drift // channels) * channels] if drift > 0 else []
    for pixels in (1, -1, 2, -2):
        shifts.append(pixels * channels)
    return [s for s in dict.fromkeys(shifts) if s and depthwise_shift_allowed(op, s)]


def _with_overlapping_pointwise(graph: Graph, program: Program, scratch: ScratchFn | None,
                                *, optimize: bool) -> Program:
    """Let convolutions at the peak overlap their input, one at a time, as long as the
    arena shrinks (each one ties two buffers together, so only where it pays)."""
    enabled: frozenset[int] = frozenset()
    tried: set[int] = set()
    best = program
    while True:
        live = live_bytes(best)
        candidates = [s for s in sorted(range(len(graph.ops)), key=lambda s: -live[s])
                      if s not in tried and is_overlappable_conv(graph.ops[s])]
        candidates = [s for s in candidates if live[s] >= 0.9 * max(live)]
        if not candidates:
            return best
        step = candidates[0]
        tried.add(step)
        trial = build_program(graph, plan_storage(graph, pointwise=enabled | {step}), scratch,
                              optimize=optimize)
        if trial.arena_bytes < best.arena_bytes:
            best, enabled = trial, enabled | {step}


def build_program(graph: Graph, storage: Storage, scratch: ScratchFn | None,
                  *, optimize: bool) -> Program:
    """Lifetimes and placement for `graph` in its given order with the given storage."""
    items = lifetimes(graph, storage, scratch)
    steps = len(graph.ops)
    placement = allocate(items, steps, optimize=optimize)
    extra, placement = _place_optional(lifetimes(graph, storage, scratch, optional=True), items, placement)
    return assemble(graph, storage, items, placement, extra)


def _place_optional(wishes: Sequence[Lifetime], items: Sequence[Lifetime],
                    placement: Placement) -> tuple[list[Lifetime], Placement]:
    """The optional scratch buffers that fit in bytes of the placed arena free during
    their step (lowest such offset, in step order), with the placement extended by
    them; the others are dropped (their kernels run without them)."""
    placed = [(item, placement.offsets[item.name]) for item in items]
    granted: list[Lifetime] = []
    offsets = dict(placement.offsets)
    for wish in wishes:
        at = choose_offset(wish, forbidden_intervals(wish, placed), placement.arena_bytes, best_fit=False)
        if at + wish.size <= placement.arena_bytes:
            placed.append((wish, at))
            granted.append(wish)
            offsets[wish.name] = at
    return granted, Placement(offsets, placement.arena_bytes, placement.method)


def assemble(graph: Graph, storage: Storage, items: Sequence[Lifetime],
             placement: Placement, optional: Sequence[Lifetime] = ()) -> Program:
    """The Program: one Buffer per tensor (at its group's offset plus its delta) and per
    scratch request (`optional`: the granted optional ones, outside the live-set bound,
    which counts what the program needs)."""
    buffers: list[Buffer] = []
    scratch_of: dict[int, list[tuple[int, Buffer]]] = {}
    offsets: dict[Tensor, int] = {}
    for item in (*items, *optional):
        at = placement.offsets[item.name]
        if item.kind == "scratch":
            buf = Buffer(item.name, at, item.size, item.first, item.last, item.align, "scratch", item.name)
            buffers.append(buf)
            scratch_of.setdefault(item.step, []).append((item.request, buf))
            continue
        for piece in item.pieces:
            t = piece.tensor
            offsets[t] = at + piece.delta
            buffers.append(Buffer(t.name, at + piece.delta, piece.size, piece.first, piece.last,
                                  item.align, "tensor", item.root.name))
    caller = _caller_buffers(graph, storage, placement.arena_bytes, offsets)
    missing = [t.name for t in graph.activations if t not in offsets]
    if missing:
        raise MCUCError(f"graph {graph.name!r}: no arena offset planned for {', '.join(missing)}")
    steps = tuple(Step(op, tuple(b for _, b in sorted(scratch_of.get(i, []), key=lambda rb: rb[0])),
                       storage.placement(i))
                  for i, op in enumerate(graph.ops))
    buffers.sort(key=lambda b: (b.first, b.offset))
    state_base, state_offsets, state_bytes = state_layout(
        max([placement.arena_bytes, *(b.end for b in caller)]), graph.states)
    offsets.update(state_offsets)
    return Program(graph, steps, offsets, placement.arena_bytes, tuple(buffers),
                   live_bound(items, len(graph.ops)), notes={"placement": placement.method},
                   caller_buffers=caller, state_base=state_base, state_bytes=state_bytes)


def _caller_buffers(graph: Graph, storage: Storage, arena_bytes: int,
                    offsets: dict[Tensor, int]) -> tuple[CallerBuffer, ...]:
    """The caller buffers of the groups pinned to a graph input or output (in input, then
    output order) after the arena, and the addresses of their members in `offsets`."""
    members = storage.members()
    pinned = sorted(storage.caller.items(), key=lambda rc: (rc[1][0] != "input", rc[1][1]))
    bases = caller_buffer_bases(arena_bytes, [edge for _, (_, _, edge) in pinned])
    result = []
    for (root, (role, index, edge)), base in zip(pinned, bases):
        at = base - storage.home[edge][1]  # the group's origin: the edge starts at `base`
        for t in members[root]:
            offsets[t] = at + storage.home[t][1]
            if offsets[t] < base or offsets[t] + t.nbytes > base + edge.nbytes:
                raise MCUCError(f"graph {graph.name!r}: {t.name!r} lies outside the caller buffer of graph "
                                f"{role} {index} {edge.name!r}")
        result.append(CallerBuffer(role, index, edge, base))
    return tuple(result)
