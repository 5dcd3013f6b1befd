"""DYNAMIC_UPDATE_SLICE: the operand with the update written over it at the start
indices, as tflite-micro computes it (kernels/dynamic_update_slice.cc).

- Prepare: operand and update of one type (int8 or int16 here: the bytes are copied
  whatever their quantization, as tflite-micro copies them), of one rank, the update no
  larger than the operand along any axis; the start indices int32 or int64, 1-D, one per
  axis.
- Eval: each start index is clamped into [0, operand extent - update extent]; the output
  is the operand's bytes with the update's written from the clamped start.

Constant start indices make two static copies (mcuc.ir.ops.movement: the operand, then
the update). Start indices computed at run time (`dynamic`) make the same two copies with
the update's destination offset computed by the backends from the clamped indices
(`update_move` with offset 0, and the operand's element strides `strides`).
"""
from __future__ import annotations

import numpy as np

from ..op import Op
from . import OpDef, register
from .batch_matmul import full_inputs
from .common import no_macs, require
from .kinds import DYNAMIC_UPDATE_SLICE
from .movement import Move, contiguous_strides, register_moves


def check(op: Op) -> None:
    require(len(op.inputs) == 3 and all(t is not None for t in op.inputs) and len(op.outputs) == 1, op,
            "takes the operand, the update and the start indices, and one output")
    operand, update, indices = op.inputs
    y = op.output
    require(operand.dtype in ("int8", "int16") and update.dtype == operand.dtype and y.dtype == operand.dtype, op,
            f"the operand, update and output must share one type, int8 or int16 (got {operand.dtype}, "
            f"{update.dtype}, {y.dtype})")
    require(len(update.shape) == len(operand.shape) >= 1, op,
            f"the update {list(update.shape)} must have the operand's rank {len(operand.shape)}")
    require(all(u <= o for u, o in zip(update.shape, operand.shape)), op,
            f"the update {list(update.shape)} is larger than the operand {list(operand.shape)} along an axis")
    require(indices.dtype in ("int32", "int64") and tuple(indices.shape) == (len(operand.shape),), op,
            f"the start indices must be int32 or int64 of shape [{len(operand.shape)}] (got {indices.dtype} "
            f"{list(indices.shape)})")
    require(tuple(y.shape) == tuple(operand.shape), op, "the output must have the operand's shape")


def dynamic(op: Op) -> bool:
    """Whether the start indices are computed at run time."""
    return not op.inputs[2].is_constant


def clamped_start(op: Op, indices) -> list[int]:
    operand, update = op.inputs[0], op.inputs[1]
    return [int(min(max(0, int(i)), o - u)) for i, o, u in zip(np.asarray(indices).reshape(-1), operand.shape,
                                                                 update.shape)]


def strides(op: Op) -> tuple[int, ...]:
    """The operand's (and output's) element strides."""
    return contiguous_strides(op.inputs[0].shape)


def update_move(op: Op, offset: int) -> Move:
    """The update's copy into the output from element `offset`."""
    update = op.inputs[1]
    return Move(1, 0, tuple(update.shape), 0, contiguous_strides(update.shape), offset, strides(op))


def operand_move(op: Op) -> Move:
    shape = tuple(op.inputs[0].shape)
    return Move(0, 0, shape, 0, contiguous_strides(shape), 0, contiguous_strides(shape))


def moves(op: Op) -> list[Move]:
    check(op)
    require(not dynamic(op), op, "start indices computed at run time have no static copies")
    start = clamped_start(op, op.inputs[2].data)
    return [operand_move(op), update_move(op, int(np.dot(start, strides(op))))]


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    check(op)
    return [tuple(op.inputs[0].shape)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    check(op)
    operand, update, indices = inputs
    out = np.array(operand, copy=True)
    start = clamped_start(op, indices)
    out[tuple(slice(s, s + u) for s, u in zip(start, op.inputs[1].shape))] = update
    return [out]


register_moves(DYNAMIC_UPDATE_SLICE, moves)
OPDEF = register(OpDef(DYNAMIC_UPDATE_SLICE, None, infer_shapes, no_macs, full_inputs, evaluate))
