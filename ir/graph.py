"""The graph: tensors, ops in a valid execution order, graph inputs and outputs."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import networkx as nx

from .errors import MCUCError
from .op import Op
from .tensor import Tensor


@dataclass(frozen=True, eq=False)
class Graph:
    """A dataflow graph whose `ops` are in a valid execution order.

    Graphs are values: passes build new ones (`with_`) instead of mutating, so any
    pass can be run and tested alone.

    `io_buffers` says where the graph inputs and outputs live when the graph runs:
    "arena" (in the activation arena, like every other activation) or "caller" (each in
    a buffer of its own that the caller passes; the planner leaves them out of the
    arena, passes/aliasing.py). `with_` keeps it, so every pass after
    pipeline.prepare sees it.
    """

    ops: tuple[Op, ...]
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    name: str = "model"
    io_buffers: str = "arena"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))

    def with_(self, **changes) -> "Graph":
        return replace(self, **changes)

    # -- indexes -------------------------------------------------------------------

    @cached_property
    def tensors(self) -> tuple[Tensor, ...]:
        """Every tensor, graph inputs first, then in order of first use."""
        seen: dict[Tensor, None] = dict.fromkeys(self.inputs)
        for op in self.ops:
            seen.update(dict.fromkeys(t for t in op.inputs if t is not None))
            seen.update(dict.fromkeys(op.outputs))
        return tuple(seen)

    @cached_property
    def _producers(self) -> dict[Tensor, Op]:
        return {t: op for op in self.ops for t in op.outputs}

    @cached_property
    def _consumers(self) -> dict[Tensor, tuple[Op, ...]]:
        users: dict[Tensor, list[Op]] = {}
        for op in self.ops:
            for t in dict.fromkeys(t for t in op.inputs if t is not None):
                users.setdefault(t, []).append(op)
        return {t: tuple(ops) for t, ops in users.items()}

    def producer(self, tensor: Tensor) -> Op | None:
        """The op that writes `tensor`, or None for graph inputs and constants."""
        return self._producers.get(tensor)

    def consumers(self, tensor: Tensor) -> tuple[Op, ...]:
        """The ops that read `tensor`, in execution order."""
        return self._consumers.get(tensor, ())

    @property
    def activations(self) -> tuple[Tensor, ...]:
        """Tensors computed at run time or fed by the user (everything but constants and
        state tensors, which the plan keeps in a state area of their own)."""
        return tuple(t for t in self.tensors if not t.is_constant and not t.state)

    @cached_property
    def states(self) -> tuple[Tensor, ...]:
        """The state tensors (Tensor.state), in order of first use: values kept from one
        invocation to the next."""
        return tuple(t for t in self.tensors if t.state)

    @property
    def constants(self) -> tuple[Tensor, ...]:
        return tuple(t for t in self.tensors if t.is_constant)

    def to_networkx(self) -> nx.DiGraph:
        """Ops as nodes (by index in `ops`), an edge per produced-then-consumed tensor."""
        g = nx.DiGraph()
        index = {op: i for i, op in enumerate(self.ops)}
        for i, op in enumerate(self.ops):
            g.add_node(i, op=op)
        for i, op in enumerate(self.ops):
            for t in op.outputs:
                for user in self.consumers(t):
                    g.add_edge(i, index[user], tensor=t)
        return g

    # -- checks --------------------------------------------------------------------

    def verify(self) -> None:
        """Raise MCUCError unless every input is defined before use, names are unique and
        every state tensor is rewritten by exactly one op, as one of its state inputs."""
        from .ops import op_def

        defined: set[Tensor] = set(self.inputs) | set(self.states)
        names: dict[str, Tensor] = {}
        for t in self.tensors:
            other = names.setdefault(t.name, t)
            if other is not t:
                raise MCUCError(f"graph {self.name!r}: two different tensors are named {t.name!r}")
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                if t is not None and not t.is_constant and t not in defined:
                    raise MCUCError(f"op {i} {op.label}: input {t.name!r} is used before it is computed")
            for t in op.outputs:
                if t in defined:
                    raise MCUCError(f"op {i} {op.label}: output {t.name!r} is written twice")
                defined.add(t)
        for t in self.outputs:
            if t not in defined and not t.is_constant:
                raise MCUCError(f"graph output {t.name!r} is never computed")
        for t in self.states:
            if t.is_constant or t in self.inputs or t in self.outputs or self.producer(t) is not None:
                raise MCUCError(f"state tensor {t.name!r} must be no constant, graph input, graph output or op "
                                "output: only the op that keeps it rewrites it")
            users = self.consumers(t)
            keeper = [k for k, x in enumerate(users[0].inputs) if x is t] if len(users) == 1 else []
            if len(keeper) != 1 or keeper[0] not in op_def(users[0].kind).state_inputs:
                raise MCUCError(f"state tensor {t.name!r} must be read by exactly one op, as one of the inputs it "
                                f"keeps from one invocation to the next; it is read by "
                                f"{', '.join(op.label for op in users) or 'no op'}")

    def __str__(self) -> str:
        lines = [f"graph {self.name}({', '.join(repr(t) for t in self.inputs)}):"]
        lines += [f"  {op!r}" for op in self.ops]
        lines.append(f"  return {', '.join(t.name for t in self.outputs)}")
        return "\n".join(lines)
