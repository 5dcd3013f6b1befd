"""Programs without a memory planner: every activation at its own arena offset.

The plan-independent baseline for testing kernels alone (a kernel that is right here
and wrong under mcuc.passes.plan points at the plan or at in-place handling)."""
from __future__ import annotations

from mcuc.ir.graph import Graph
from mcuc.ir.program import Program, Step


def separate_buffers_program(graph: Graph, align: int = 16) -> Program:
    """Each activation tensor in its own aligned interval; no aliasing, no in-place."""
    offsets = {}
    cursor = 0
    for t in graph.activations:
        offsets[t] = cursor
        cursor += (t.nbytes + align - 1) // align * align
    return Program(graph, tuple(Step(op) for op in graph.ops), offsets, cursor)
