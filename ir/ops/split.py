"""SPLIT and SPLIT_V: one input cut along one axis into consecutive pieces, one output
each (TFLM's split.cc and split_v.cc).

The frontend resolves the constant axis (int32; negative counts from the back) and the
piece sizes: SPLIT's num_splits equal pieces (the axis must divide evenly), SPLIT_V's
size_splits (at most one -1, filled with what is left). Each output's extent along the
axis is its size; the elements are copied unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import SPLIT, SPLIT_V
from .movement import Move, axis_in_range, register_moves, require_same_dtype


@dataclass(frozen=True)
class SplitAttrs:
    axis: int
    sizes: tuple[int, ...]


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    a: SplitAttrs = op.attrs
    require(len(op.inputs) == 1, op, "takes one input")
    require_same_dtype(op)
    shape = op.input.shape
    axis = axis_in_range(op, a.axis, len(shape))
    require(len(a.sizes) == len(op.outputs) and len(a.sizes) >= 1, op,
            f"{len(a.sizes)} pieces for {len(op.outputs)} outputs")
    require(all(s >= 0 for s in a.sizes) and sum(a.sizes) == shape[axis], op,
            f"piece sizes {list(a.sizes)} do not add up to the input's extent {shape[axis]} along axis {axis}")
    return [shape[:axis] + (s,) + shape[axis + 1:] for s in a.sizes]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    axis = axis_in_range(op, op.attrs.axis, len(op.input.shape))
    cuts = np.cumsum(op.attrs.sizes)[:-1]
    return [np.ascontiguousarray(p) for p in np.split(inputs[0], cuts, axis=axis)]


def moves(op: Op) -> list[Move]:
    shape = op.input.shape
    axis = axis_in_range(op, op.attrs.axis, len(shape))
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    result, start = [], 0
    for k, size in enumerate(op.attrs.sizes):
        run = size * inner
        result.append(Move(0, k, (outer, run), start * inner, (shape[axis] * inner, 1), 0, (run, 1)))
        start += size
    return result


for _kind in (SPLIT, SPLIT_V):
    register_moves(_kind, moves)
SPLIT_OPDEF = register(OpDef(SPLIT, SplitAttrs, infer_shapes, no_macs, input_regions, evaluate))
SPLIT_V_OPDEF = register(OpDef(SPLIT_V, SplitAttrs, infer_shapes, no_macs, input_regions, evaluate))
