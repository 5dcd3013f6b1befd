"""STRIDED_SLICE with constant begin, end and strides (TFLM's strided_slice.cc and
strided_slice_common.cc, reference StridedSlice).

Input rank 1 to 4. Per axis, as the kernel computes it: a negative begin or end counts
from the back (once: + size), then it is clamped to [0, size] for a positive stride,
[-1, size - 1] for a negative one; begin_mask (end_mask) replaces begin (end) by the
first (past-the-last) index in the stride's direction; a shrink axis keeps the one
element at begin and is dropped from the output. Strides may be negative, never 0.
tflite-micro reads begin, end and strides as int32 and sets ellipsis_mask and
new_axis_mask to 0, and it never reads the `offset` option: mcuc does the same (the
output shape the file declares must then agree, as tflite-micro's Prepare checks). A
shrink axis whose begin lands past the end, or whose stride is negative, makes
tflite-micro's kernel copy nothing (the output stays uninitialized), so it is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import STRIDED_SLICE
from .movement import Move, contiguous_strides, register_moves, require_same_dtype

MAX_RANK = 4


@dataclass(frozen=True)
class StridedSliceAttrs:
    begin: tuple[int, ...]
    end: tuple[int, ...]
    strides: tuple[int, ...]
    begin_mask: int = 0
    end_mask: int = 0
    shrink_axis_mask: int = 0


def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else lo if v < lo else v


def ranges(op: Op) -> list[tuple[int, int, int, bool]]:
    """(start, step, count, shrunk) per input axis."""
    shape = op.input.shape
    a: StridedSliceAttrs = op.attrs
    rank = len(shape)
    require(1 <= rank <= MAX_RANK, op, f"input rank {rank} is not supported (1 to {MAX_RANK}, as tflite-micro)")
    require(len(a.begin) == len(a.end) == len(a.strides) == rank, op,
            f"begin {list(a.begin)}, end {list(a.end)} and strides {list(a.strides)} must have one entry per "
            f"input axis ({rank})")
    out = []
    for axis, d in enumerate(shape):
        stride = a.strides[axis]
        require(stride != 0, op, f"strides[{axis}] is 0")
        start = a.begin[axis] + (d if a.begin[axis] < 0 else 0)
        start = _clamp(start, 0, d) if stride > 0 else _clamp(start, -1, d - 1)
        if a.begin_mask >> axis & 1:
            start = 0 if stride > 0 else d - 1
        shrunk = bool(a.shrink_axis_mask >> axis & 1)
        if shrunk:
            require(stride > 0, op,
                    f"shrink axis {axis} has stride {stride}: tflite-micro's kernel then copies nothing (its loop "
                    "runs from begin towards begin + 1 in the stride's direction) and leaves the output unwritten")
            require(0 <= start < d, op,
                    f"shrink axis {axis}: begin {a.begin[axis]} is outside the axis of size {d} (tflite-micro "
                    "would leave the output unwritten)")
            out.append((start, 1, 1, True))
            continue
        end = a.end[axis] + (d if a.end[axis] < 0 else 0)
        end = _clamp(end, 0, d) if stride > 0 else _clamp(end, -1, d - 1)
        if a.end_mask >> axis & 1:
            end = d if stride > 0 else -1
        count = max(0, -(-(end - start) // stride)) if stride > 0 else max(0, -(-(start - end) // -stride))
        out.append((start, stride, count, False))
    return out


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    require_same_dtype(op)
    for name in ("begin_mask", "end_mask", "shrink_axis_mask"):
        require(0 <= getattr(op.attrs, name) < 2**31, op, f"{name} {getattr(op.attrs, name)} is not a bit mask")
    return [tuple(count for _, _, count, shrunk in ranges(op) if not shrunk)]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    index = tuple(np.arange(count) * step + start for start, step, count, _ in ranges(op))
    y = inputs[0][np.ix_(*index)]
    return [np.ascontiguousarray(y).reshape(op.output.shape)]


def moves(op: Op) -> list[Move]:
    r = ranges(op)
    xs = contiguous_strides(op.input.shape)
    shape = tuple(count for _, _, count, _ in r)
    src = sum(start * s for (start, _, _, _), s in zip(r, xs))
    return [Move(0, 0, shape, src, tuple(step * s for (_, step, _, _), s in zip(r, xs)), 0,
                 contiguous_strides(shape))]


register_moves(STRIDED_SLICE, moves)
OPDEF = register(OpDef(STRIDED_SLICE, StridedSliceAttrs, infer_shapes, no_macs, input_regions, evaluate))
