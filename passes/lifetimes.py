"""Lifetimes: for a given op order, every buffer to place (a storage group of
activations, or a kernel's scratch) with its pieces' intervals, sizes and alignment.

Steps are the op indices 0..n-1; each tensor is live during its interval
(intervals.tensor_intervals). A group is placed at one offset; each member is a piece at
its delta with its own interval, so two groups may share bytes wherever their live
pieces do not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from mcuc.ir import Graph, MCUCError, Op, Tensor
from mcuc.ir.program import InPlace, ScratchRequest

from .aliasing import Storage
from .intervals import tensor_intervals

ScratchFn = Callable[[Op, bool], Sequence[ScratchRequest]]

DEFAULT_ALIGN = 4


@dataclass(frozen=True)
class Piece:
    """`size` bytes at `delta` inside its buffer, live during steps [first, last]."""

    delta: int
    size: int
    first: int
    last: int
    tensor: Tensor | None = None


@dataclass(frozen=True)
class Lifetime:
    """A buffer to place: `size` bytes (its extent), live during steps [first, last].

    kind "tensor": the storage group of `root` (`pieces`, one per member tensor);
    kind "scratch": request number `request` of step `step`'s kernel (one piece)."""

    name: str
    size: int
    first: int
    last: int
    pieces: tuple[Piece, ...]
    align: int = DEFAULT_ALIGN
    kind: str = "tensor"
    root: Tensor | None = None
    step: int = -1
    request: int = -1

    def overlaps(self, other: "Lifetime") -> bool:
        return self.first <= other.last and other.first <= self.last

    def live_bytes(self, step: int) -> int:
        """Bytes of this buffer in use at `step` (the union of its live pieces)."""
        ranges = sorted((p.delta, p.delta + p.size) for p in self.pieces if p.first <= step <= p.last)
        total, end = 0, 0
        for a, b in ranges:
            a = max(a, end)
            if b > a:
                total += b - a
            end = max(end, b)
        return total


def lifetimes(graph: Graph, storage: Storage, scratch: ScratchFn | None = None,
              align: int = DEFAULT_ALIGN, optional: bool = False) -> list[Lifetime]:
    """Every storage group and every scratch buffer the arena holds, in a deterministic
    order (groups by first use, then scratch by step); groups pinned to a caller buffer
    (Storage.caller) are not among them, so the live-set bound counts arena bytes only.
    Optional scratch requests (ScratchRequest.optional) are left out, or with `optional`
    they are the only ones returned (no groups)."""
    spans = tensor_intervals(graph)
    result: list[Lifetime] = []
    for root, members in ({} if optional else storage.members()).items():
        if root in storage.caller:
            continue  # a graph input or output in the caller's buffer: not in the arena
        pieces = tuple(Piece(storage.home[t][1], t.nbytes, *spans[t], t) for t in members)
        result.append(Lifetime(root.name, storage.size[root], min(p.first for p in pieces),
                               max(p.last for p in pieces), pieces, align, "tensor", root))
    if scratch is not None:
        for i, op in enumerate(graph.ops):
            for r, req in enumerate(scratch(op, isinstance(storage.placement(i), InPlace))):
                if req.size < 0 or req.align <= 0:
                    raise MCUCError(f"op {i} {op.label}: scratch request {req.name!r} has size "
                                    f"{req.size} and alignment {req.align}; both must be positive")
                if req.size == 0 or req.optional != optional:
                    continue
                result.append(Lifetime(f"scratch{i}_{req.name}", req.size, i, i,
                                       (Piece(0, req.size, i, i),), max(req.align, align),
                                       "scratch", step=i, request=r))
    result.sort(key=lambda l: (l.first, l.kind != "tensor", l.last))
    return result


def live_bytes_per_step(items: Sequence[Lifetime], steps: int) -> list[int]:
    """Bytes in use at each step, summed over buffers."""
    live = [0] * max(steps, 1)
    for item in items:
        if len(item.pieces) == 1:
            for s in range(item.first, item.last + 1):
                live[s] += item.size
        else:
            for s in range(item.first, item.last + 1):
                live[s] += item.live_bytes(s)
    return live


def live_bound(items: Sequence[Lifetime], steps: int) -> int:
    """The live-set lower bound: no placement fits in fewer bytes."""
    return max(live_bytes_per_step(items, steps), default=0)
