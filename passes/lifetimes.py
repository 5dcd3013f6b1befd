"""Lifetimes: for a given op order, every buffer (activation storage or kernel scratch)
as an interval of steps with a size and an alignment.

Steps are the op indices 0..n-1. A graph input is live from step 0, a graph output until
the last step; a computed tensor from the step that writes it to the last step that reads
it (or its own step if nobody does: it still needs room while its op runs). Two buffers
may share bytes only if their intervals are disjoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from mcuc.ir import Graph, MCUCError, Op, Tensor
from mcuc.ir.program import ScratchRequest

if TYPE_CHECKING:  # aliasing.py uses tensor_intervals from here
    from .aliasing import Storage

ScratchFn = Callable[[Op, bool], Sequence[ScratchRequest]]

DEFAULT_ALIGN = 4


@dataclass(frozen=True)
class Lifetime:
    """A buffer to place: `size` bytes live during steps [first, last].

    kind "tensor": the storage of `root` (and `tensors`, everything aliased into it);
    kind "scratch": request number `request` of step `step`'s kernel."""

    name: str
    size: int
    first: int
    last: int
    align: int = DEFAULT_ALIGN
    kind: str = "tensor"
    root: Tensor | None = None
    tensors: tuple[Tensor, ...] = ()
    step: int = -1
    request: int = -1

    def overlaps(self, other: "Lifetime") -> bool:
        return self.first <= other.last and other.first <= self.last


def tensor_intervals(graph: Graph) -> dict[Tensor, tuple[int, int]]:
    """[first, last] step of every activation tensor in graph.ops order."""
    last_step = max(len(graph.ops) - 1, 0)
    span: dict[Tensor, list[int]] = {t: [0, 0] for t in graph.inputs}
    for i, op in enumerate(graph.ops):
        for t in op.outputs:
            span[t] = [i, i]
        for t in op.activation_inputs:
            span[t][1] = max(span[t][1], i)
    for t in graph.outputs:
        if not t.is_constant:
            span[t][1] = last_step
    return {t: (a, b) for t, (a, b) in span.items()}


def lifetimes(graph: Graph, storage: Storage, scratch: ScratchFn | None = None,
              align: int = DEFAULT_ALIGN) -> list[Lifetime]:
    """Intervals of every storage root (union of its members' intervals) and every
    scratch buffer, in a deterministic order (roots by first use, then scratch by step)."""
    spans = tensor_intervals(graph)
    result: list[Lifetime] = []
    for root, members in storage.members().items():
        first = min(spans[t][0] for t in members)
        last = max(spans[t][1] for t in members)
        result.append(Lifetime(root.name, storage.size[root], first, last, align, "tensor",
                               root, tuple(members)))
    if scratch is not None:
        for i, op in enumerate(graph.ops):
            for r, req in enumerate(scratch(op, i in storage.in_place)):
                if req.size < 0 or req.align <= 0:
                    raise MCUCError(f"op {i} {op.label}: scratch request {req.name!r} has size "
                                    f"{req.size} and alignment {req.align}; both must be positive")
                if req.size == 0:
                    continue
                result.append(Lifetime(f"scratch{i}_{req.name}", req.size, i, i, max(req.align, 1),
                                       "scratch", step=i, request=r))
    result.sort(key=lambda l: (l.first, l.kind != "tensor", l.last))
    return result


def live_bytes_per_step(items: Sequence[Lifetime], steps: int) -> list[int]:
    """Sum of sizes live at each step."""
    live = [0] * max(steps, 1)
    for l in items:
        for s in range(l.first, l.last + 1):
            live[s] += l.size
    return live


def live_bound(items: Sequence[Lifetime], steps: int) -> int:
    """The live-set lower bound: no placement fits in fewer bytes."""
    return max(live_bytes_per_step(items, steps), default=0)
