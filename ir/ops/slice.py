"""SLICE with constant begin and size (TFLM's slice.cc, reference Slice).

Axis i keeps input elements [begin[i], begin[i] + size[i]) (size -1: to the end), rank
1 to 5. tflite-micro neither clamps nor checks the box (it reads outside the input when
the box leaves it), so mcuc refuses any box that does not lie inside the input. Run-time
begin or size is refused by the frontend. The elements are copied unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import SLICE
from .movement import Move, contiguous_strides, register_moves, require_same_dtype

MAX_RANK = 5


@dataclass(frozen=True)
class SliceAttrs:
    begin: tuple[int, ...]
    size: tuple[int, ...]


def box(op: Op) -> list[tuple[int, int]]:
    """(start, stop) per axis."""
    shape = op.input.shape
    a: SliceAttrs = op.attrs
    require(1 <= len(shape) <= MAX_RANK, op, f"input rank {len(shape)} is not supported (1 to {MAX_RANK})")
    require(len(a.begin) == len(a.size) == len(shape), op,
            f"begin {list(a.begin)} and size {list(a.size)} must have one entry per input axis ({len(shape)})")
    out = []
    for i, (b, s, d) in enumerate(zip(a.begin, a.size, shape)):
        stop = d if s == -1 else b + s
        require(s >= -1 and 0 <= b <= stop <= d, op,
                f"axis {i}: begin {b} and size {s} leave the input's extent {d} (tflite-micro would read "
                "outside the tensor)")
        out.append((b, stop))
    return out


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    require_same_dtype(op)
    return [tuple(stop - start for start, stop in box(op))]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    if op.input.is_constant:
        return [None]
    b = box(op)
    return [Region(tuple(s + start for s, (start, _) in zip(out.start, b)),
                   tuple(s + start for s, (start, _) in zip(out.stop, b)))]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(inputs[0][tuple(slice(a, b) for a, b in box(op))])]


def moves(op: Op) -> list[Move]:
    b = box(op)
    xs = contiguous_strides(op.input.shape)
    shape = tuple(stop - start for start, stop in b)
    return [Move(0, 0, shape, sum(start * s for (start, _), s in zip(b, xs)), xs, 0, contiguous_strides(shape))]


register_moves(SLICE, moves)
OPDEF = register(OpDef(SLICE, SliceAttrs, infer_shapes, no_macs, input_regions, evaluate))
