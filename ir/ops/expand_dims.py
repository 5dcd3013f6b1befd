"""EXPAND_DIMS: insert an axis of size 1 (TFLM's expand_dims.cc; the axis is a constant
int32, negative counts from the back of the output, as the frontend resolves it). The
bytes are the input's under another shape: a view like RESHAPE and SQUEEZE.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, Trait, register
from .common import no_macs, require
from .kinds import EXPAND_DIMS
from .movement import Move, axis_in_range, register_moves, require_same_dtype


@dataclass(frozen=True)
class ExpandDimsAttrs:
    axis: int


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    require_same_dtype(op)
    shape = op.input.shape
    axis = axis_in_range(op, op.attrs.axis, len(shape) + 1)
    return [shape[:axis] + (1,) + shape[axis:]]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    if op.input.is_constant:
        return [None]
    axis = axis_in_range(op, op.attrs.axis, len(op.input.shape) + 1)
    return [Region(out.start[:axis] + out.start[axis + 1:], out.stop[:axis] + out.stop[axis + 1:])]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(inputs[0]).reshape(op.output.shape)]


def moves(op: Op) -> list[Move]:
    return [Move(0, 0, (op.input.size,), 0, (1,), 0, (1,))]


register_moves(EXPAND_DIMS, moves)
OPDEF = register(OpDef(EXPAND_DIMS, ExpandDimsAttrs, infer_shapes, no_macs, input_regions, evaluate,
                       traits={Trait.VIEW}))
