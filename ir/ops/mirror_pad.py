"""MIRROR_PAD of int8 tensors (TFLM's mirror_pad.cc; it runs int8 and float32).

Per axis with pads (before, after) and extent n: output index p < before reads input
before + offset - 1 - p; the middle reads p - before; past the end, q = p - before - n
reads n - 1 - offset - q; offset is 1 for REFLECT (the edge is not repeated) and 0 for
SYMMETRIC. tflite-micro indexes without checking, so mcuc requires each pad to be at most
n - offset (what TensorFlow requires) and refuses the rest. Elements are copied
unchanged; the op's copies are one move per combination of the three segments of each
axis.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import MIRROR_PAD
from .movement import Move, contiguous_strides, register_moves, require_same_dtype

REFLECT, SYMMETRIC = "REFLECT", "SYMMETRIC"


@dataclass(frozen=True)
class MirrorPadAttrs:
    pads: tuple[tuple[int, int], ...]
    mode: str = REFLECT


def offset_of(op: Op) -> int:
    return 1 if op.attrs.mode == REFLECT else 0


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    require_same_dtype(op, ("int8",))
    a: MirrorPadAttrs = op.attrs
    require(a.mode in (REFLECT, SYMMETRIC), op, f"mode {a.mode!r} is not REFLECT or SYMMETRIC")
    shape = op.input.shape
    require(len(a.pads) == len(shape), op, f"paddings have {len(a.pads)} rows for an input of rank {len(shape)}")
    off = offset_of(op)
    for axis, ((before, after), n) in enumerate(zip(a.pads, shape)):
        require(0 <= before <= n - off and 0 <= after <= n - off, op,
                f"axis {axis}: paddings ({before}, {after}) exceed {n - off}, the most {a.mode} padding of an "
                f"axis of {n} allows (tflite-micro would read outside the input)")
    return [tuple(n + before + after for (before, after), n in zip(a.pads, shape))]


def input_regions(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    mode = "reflect" if op.attrs.mode == REFLECT else "symmetric"
    return [np.ascontiguousarray(np.pad(inputs[0], op.attrs.pads, mode=mode))]


def _segments(before: int, after: int, n: int, off: int) -> list[tuple[int, int, int, int]]:
    """(output start, count, input start, input step) of an axis's three parts."""
    return [(0, before, before + off - 1, -1), (before, n, 0, 1), (before + n, after, n - 1 - off, -1)]


def moves(op: Op) -> list[Move]:
    off = offset_of(op)
    xs = contiguous_strides(op.input.shape)
    ys = contiguous_strides(op.output.shape)
    per_axis = [_segments(b, a, n, off) for (b, a), n in zip(op.attrs.pads, op.input.shape)]
    result = []
    for combo in itertools.product(*per_axis):
        shape = tuple(count for _, count, _, _ in combo)
        src = sum(start * s for (_, _, start, _), s in zip(combo, xs))
        dst = sum(start * s for (start, _, _, _), s in zip(combo, ys))
        result.append(Move(0, 0, shape, src, tuple(step * s for (_, _, _, step), s in zip(combo, xs)), dst, ys))
    return result


register_moves(MIRROR_PAD, moves)
OPDEF = register(OpDef(MIRROR_PAD, MirrorPadAttrs, infer_shapes, no_macs, input_regions, evaluate))
