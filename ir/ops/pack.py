"""PACK and UNPACK (TFLM's pack.cc and unpack.cc): PACK stacks N inputs of one shape
along a new axis of the output; UNPACK cuts its input along an axis into one output per
index, that axis removed. The axis is resolved by the frontend (negative counts from the
back of the output for PACK, of the input for UNPACK). Elements are copied unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import PACK, UNPACK
from .movement import Move, axis_in_range, register_moves, require_same_dtype


@dataclass(frozen=True)
class PackAttrs:
    axis: int


def pack_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) >= 1 and all(t is not None for t in op.inputs) and len(op.outputs) == 1, op,
            "takes at least one input and one output")
    require_same_dtype(op)
    first = op.inputs[0].shape
    for t in op.inputs:
        require(t.dtype == op.inputs[0].dtype, op, f"input {t.name!r} is {t.dtype}, input 0 {op.inputs[0].dtype}")
        require(t.shape == first, op, f"input {t.name!r} has shape {list(t.shape)}, input 0 {list(first)}")
    axis = axis_in_range(op, op.attrs.axis, len(first) + 1)
    return [first[:axis] + (len(op.inputs),) + first[axis:]]


def unpack_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1, op, "takes one input")
    require_same_dtype(op)
    shape = op.input.shape
    axis = axis_in_range(op, op.attrs.axis, len(shape))
    require(len(op.outputs) == shape[axis], op,
            f"{len(op.outputs)} outputs, but the input has {shape[axis]} entries along axis {axis}")
    return [shape[:axis] + shape[axis + 1:]] * len(op.outputs)


def full_inputs(op: Op, out: Region) -> list[Region | None]:
    return [None if t.is_constant else Region.full(t.shape) for t in op.inputs]


def pack_evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    axis = axis_in_range(op, op.attrs.axis, len(op.inputs[0].shape) + 1)
    return [np.ascontiguousarray(np.stack([np.asarray(x) for x in inputs], axis=axis))]


def unpack_evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    axis = axis_in_range(op, op.attrs.axis, len(op.input.shape))
    return [np.ascontiguousarray(np.take(inputs[0], k, axis=axis)).reshape(y.shape) for k, y in enumerate(op.outputs)]


def _outer_inner(shape: tuple[int, ...], axis: int) -> tuple[int, int]:
    return int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64))


def pack_moves(op: Op) -> list[Move]:
    n = len(op.inputs)
    axis = axis_in_range(op, op.attrs.axis, len(op.inputs[0].shape) + 1)
    outer, inner = _outer_inner(op.inputs[0].shape, axis)
    return [Move(k, 0, (outer, inner), 0, (inner, 1), k * inner, (n * inner, 1)) for k in range(n)]


def unpack_moves(op: Op) -> list[Move]:
    shape = op.input.shape
    axis = axis_in_range(op, op.attrs.axis, len(shape))
    outer, inner = _outer_inner(shape[:axis] + shape[axis + 1:], axis)
    n = shape[axis]
    return [Move(0, k, (outer, inner), k * inner, (n * inner, 1), 0, (inner, 1)) for k in range(n)]


register_moves(PACK, pack_moves)
register_moves(UNPACK, unpack_moves)
PACK_OPDEF = register(OpDef(PACK, PackAttrs, pack_shapes, no_macs, full_inputs, pack_evaluate))
UNPACK_OPDEF = register(OpDef(UNPACK, PackAttrs, unpack_shapes, no_macs, full_inputs, unpack_evaluate))
