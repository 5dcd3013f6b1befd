"""Run a planned Program on ONE byte arena with the reference semantics.

Every activation is read from and written to its planned offset, so a wrong memory plan
gives wrong bytes. This is the executable meaning of a Program that both backends must
match. Before it runs anything, run_program verifies the plan statically
(ir/program_check.check_program: every placement rule on the offsets, a PlanError
naming the step otherwise); then:

- the arena starts as junk, and scratch buffers are filled with junk before their step
  (a kernel may scribble there), so nothing may rely on zeroed or preserved bytes;
- an Alias step moves no bytes (its outputs must already be in place);
- a PatchLoop runs its lowered calls as they are (patch_lowering.run_calls): copies move
  bytes, each region call evaluates its op at its offsets;
- every other step reads all its inputs, evaluates, and writes its outputs (and the new
  value of each state input, in the state area, ir/program.py).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .interpreter import check_inputs
from .ops import op_def
from .patch_lowering import run_calls
from .program import Alias, PatchLoop, Program
from .program_check import RULE_CALLER, PlanError, check_program
from .tensor import Tensor


def _read(arena: np.ndarray, offset: int, t: Tensor) -> np.ndarray:
    return arena[offset: offset + t.nbytes].copy().view(np.dtype(t.dtype)).reshape(t.shape)


def _write(arena: np.ndarray, offset: int, t: Tensor, value: np.ndarray) -> None:
    data = np.ascontiguousarray(value, dtype=np.dtype(t.dtype)).reshape(-1).view(np.uint8)
    arena[offset: offset + data.size] = data


def run_program(program: Program, inputs: Sequence[np.ndarray], *, seed: int = 0,
                state: np.ndarray | None = None) -> list[np.ndarray]:
    """Execute `program` on one uint8 arena of program.arena_bytes and return the outputs.
    With caller buffers (graph.io_buffers == "caller") the same byte array holds them
    past the arena, at their planned addresses (ir/program.CallerBuffer); an input
    buffer must hold the same bytes after the run (a PlanError otherwise). `state` (uint8,
    program.state_bytes) is the state area before the run and gets its bytes after it;
    without it the run starts from a reset state (Program.reset_state_area)."""
    check_program(program)
    graph = program.graph
    rng = np.random.default_rng(seed)
    arena = rng.integers(0, 256, program.address_bytes, dtype=np.uint8)
    area = slice(program.state_base, program.state_base + program.state_bytes)
    arena[area] = program.reset_state_area() if state is None else state
    for t, x in zip(graph.inputs, check_inputs(graph, inputs)):
        _write(arena, program.offsets[t], t, x)
    given = [(b, arena[b.base:b.end].copy()) for b in program.caller_buffers if b.role == "input"]
    for step in program.steps:
        op = step.op
        if isinstance(step.placement, Alias):
            continue
        for buf in step.scratch:
            arena[buf.offset: buf.end] = rng.integers(0, 256, buf.size, dtype=np.uint8)
        if isinstance(step, PatchLoop):
            run_calls(arena, step.calls)
            continue
        ins = [None if t is None else t.data if t.is_constant else _read(arena, program.offsets[t], t)
               for t in op.inputs]
        opdef = op_def(op.kind)
        outs = opdef.evaluate(op, ins)
        for t, y in zip((*op.outputs, *(op.inputs[k] for k in opdef.state_inputs)), outs):
            _write(arena, program.offsets[t], t, y)
    if state is not None:
        state[...] = arena[area]
    for b, before in given:
        if not np.array_equal(arena[b.base:b.end], before):
            raise PlanError(f"graph input {b.index} {b.tensor.name!r}: {RULE_CALLER} rule broken: the run wrote "
                            f"into the caller's input buffer", None, RULE_CALLER)
    return [t.data.copy() if t.is_constant else _read(arena, program.offsets[t], t) for t in graph.outputs]
