"""Tensor intervals: the steps during which each activation must hold its bytes, for a
given op order. Aliasing decisions (aliasing.py) and the buffers to place (lifetimes.py)
both start from them.

Steps are the op indices 0..n-1. A graph input is live from step 0, a graph output until
the last step; a computed tensor from the step that writes it to the last step that reads
it (or its own step if nobody does: it still needs room while its op runs).
"""
from __future__ import annotations

from mcuc.ir import Graph, Tensor


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
