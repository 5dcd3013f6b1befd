"""The reference interpreter: runs a Graph on numpy arrays with the reference
kernels' exact integer semantics, op by op, each op as its ir/ops module defines it."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .errors import MCUCError
from .graph import Graph
from .op import Op
from .ops import op_def
from .tensor import Tensor


def check_inputs(graph: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Inputs as arrays of each graph input's dtype and shape, or MCUCError."""
    if len(inputs) != len(graph.inputs):
        raise MCUCError(f"{graph.name} takes {len(graph.inputs)} inputs, got {len(inputs)}")
    arrays = []
    for t, x in zip(graph.inputs, inputs):
        x = np.asarray(x)
        if x.dtype != np.dtype(t.dtype):
            raise MCUCError(f"input {t.name!r} must be {t.dtype}, got {x.dtype}")
        if x.size != t.size:
            raise MCUCError(f"input {t.name!r} must have shape {list(t.shape)}, got {list(x.shape)}")
        arrays.append(x.reshape(t.shape))
    return arrays


def reset_state(graph: Graph) -> dict[Tensor, np.ndarray]:
    """The value of each state tensor (Tensor.state) after a reset."""
    return {t: t.reset_value() for t in graph.states}


def run(graph: Graph, inputs: Sequence[np.ndarray],
        observe: Callable[[Op, list[np.ndarray]], None] | None = None,
        state: dict[Tensor, np.ndarray] | None = None) -> list[np.ndarray]:
    """Evaluate `graph` on `inputs` and return its outputs.

    `observe(op, outputs)` is called after each op (for debugging a mismatch). `state`
    holds the state tensors' values (reset_state's, or a previous run's) and gets their
    new values; without it every run starts from a reset state."""
    values: dict[Tensor, np.ndarray] = dict(zip(graph.inputs, check_inputs(graph, inputs)))
    state = reset_state(graph) if state is None else state
    values.update((t, state[t]) for t in graph.states)

    def value(t: Tensor | None) -> np.ndarray | None:
        if t is None:
            return None
        return t.data if t.is_constant else values[t]

    for op in graph.ops:
        opdef = op_def(op.kind)
        outputs = opdef.evaluate(op, [value(t) for t in op.inputs])
        kept = [op.inputs[k] for k in opdef.state_inputs]
        if len(outputs) != len(op.outputs) + len(kept):
            raise AssertionError(f"{op.label} gave {len(outputs)} values for {len(op.outputs)} outputs and "
                                 f"{len(kept)} state inputs")
        for t, y in zip((*op.outputs, *kept), outputs):
            if y.shape != t.shape or y.dtype != np.dtype(t.dtype):
                raise AssertionError(f"{op.label} produced {y.dtype}{list(y.shape)} for {t!r}")
            values[t] = y
        for t in kept:
            state[t] = values[t]
        if observe is not None:
            observe(op, outputs[:len(op.outputs)])
    return [value(t) for t in graph.outputs]
