"""Aliasing and in-place decisions: which tensors share arena bytes.

Every activation tensor gets a *home*: a root tensor whose buffer holds it and a byte
offset inside that buffer. A root's buffer is as large as the largest tensor living in it.
This module decides the homes for one op order; lifetimes.py turns homes into intervals.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mcuc.ir import Graph, Tensor


@dataclass(frozen=True, eq=False)
class Storage:
    """Where each activation lives, for one op order (graph.ops as given).

    home[t] = (root, byte offset of t inside root's buffer); size[root] = bytes of the
    root's buffer. in_place[i] = index of the input op i writes its output 0 over.
    alias_steps: ops that move no bytes (RESHAPE/SQUEEZE, fully sliced CONCATENATION).
    """

    home: dict[Tensor, tuple[Tensor, int]]
    size: dict[Tensor, int]
    in_place: dict[int, int] = field(default_factory=dict)
    alias_steps: frozenset[int] = frozenset()

    def root(self, tensor: Tensor) -> Tensor:
        return self.home[tensor][0]

    def members(self) -> dict[Tensor, list[Tensor]]:
        """root -> the tensors living in its buffer (root first)."""
        groups: dict[Tensor, list[Tensor]] = {}
        for t, (root, _) in self.home.items():
            groups.setdefault(root, []).append(t)
        for root, ts in groups.items():
            ts.sort(key=lambda t: t is not root)
        return groups


def separate_storage(graph: Graph) -> Storage:
    """Every activation in its own buffer: no aliasing, no in-place (the baseline)."""
    acts = graph.activations
    return Storage(home={t: (t, 0) for t in acts}, size={t: t.nbytes for t in acts})
