"""The scheduled program: what every backend consumes (DESIGN.md, The IR).

An ordered list of steps with every buffer placed at a byte offset in one arena. Both
backends run the same program, so the host backend checks the memory plan as well as
the arithmetic. passes/ produce it; backends/ read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .graph import Graph
from .op import Op
from .tensor import Tensor


@dataclass(frozen=True)
class ScratchRequest:
    """A temporary buffer a backend's kernel needs while one op runs (partial im2col,
    a depthwise channel plane, ...). Backends say what they need; the planner places it
    in the arena like any activation, live only during its op."""

    name: str
    size: int
    align: int = 4


@dataclass(frozen=True)
class Buffer:
    """A placed interval of the arena: bytes [offset, offset + size), live from step
    `first` to step `last` inclusive."""

    name: str
    offset: int
    size: int
    first: int
    last: int
    align: int = 4

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True, eq=False)
class Step:
    """One op call. `scratch` holds the placed scratch buffers, in the order the
    backend's ScratchRequests listed them."""

    op: Op
    scratch: tuple[Buffer, ...] = ()


@dataclass(frozen=True, eq=False)
class Program:
    """A graph in its scheduled order with a memory plan.

    `offsets` maps every activation tensor (graph inputs and outputs included) to its
    byte offset in the arena; aliases (RESHAPE, in-place ops) share offsets.
    """

    graph: Graph
    steps: tuple[Step, ...]
    offsets: dict[Tensor, int]
    arena_bytes: int
    buffers: tuple[Buffer, ...] = ()
    live_bound_bytes: int = 0
    notes: dict = field(default_factory=dict)

    def offset(self, tensor: Tensor) -> int:
        return self.offsets[tensor]
