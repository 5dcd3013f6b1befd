"""SPACE_TO_DEPTH and DEPTH_TO_SPACE on NHWC (TFLM's space_to_depth.cc and
depth_to_space.cc; int8 only, as tflite-micro).

SPACE_TO_DEPTH with block b: output [n, h, w, (by * b + bx) * C + c] is input
[n, h * b + by, w * b + bx, c] (H and W must be multiples of b). DEPTH_TO_SPACE is its
inverse: output [n, h * b + by, w * b + bx, c] is input [n, h, w, (by * b + bx) * C' + c]
(the input depth must be a multiple of b^2). Elements are copied unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import DEPTH_TO_SPACE, SPACE_TO_DEPTH
from .movement import Move, contiguous_strides, register_moves, require_same_dtype


@dataclass(frozen=True)
class BlockAttrs:
    block_size: int


def _check(op: Op) -> tuple[int, int, int, int, int]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    require_same_dtype(op, ("int8",))
    require(len(op.input.shape) == 4, op, f"input rank {len(op.input.shape)} is not 4 (NHWC)")
    b = op.attrs.block_size
    require(b >= 1, op, f"block_size {b} must be positive")
    return (*op.input.shape, b)


def space_to_depth_shapes(op: Op) -> list[tuple[int, ...]]:
    n, h, w, c, b = _check(op)
    require(h % b == 0 and w % b == 0, op, f"input height {h} and width {w} must be multiples of block_size {b}")
    return [(n, h // b, w // b, c * b * b)]


def depth_to_space_shapes(op: Op) -> list[tuple[int, ...]]:
    n, h, w, c, b = _check(op)
    require(c % (b * b) == 0, op, f"input depth {c} must be a multiple of block_size^2 = {b * b}")
    return [(n, h * b, w * b, c // (b * b))]


def full_input(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def space_to_depth_evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    n, h, w, c, b = _check(op)
    x = np.asarray(inputs[0]).reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
    return [np.ascontiguousarray(x).reshape(op.output.shape)]


def depth_to_space_evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    n, h, w, c, b = _check(op)
    x = np.asarray(inputs[0]).reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5)
    return [np.ascontiguousarray(x).reshape(op.output.shape)]


def space_to_depth_moves(op: Op) -> list[Move]:
    # Output viewed as [n, oh, ow, by, bx, c]; input element at [n, oh*b+by, ow*b+bx, c].
    n, h, w, c, b = _check(op)
    oh, ow = h // b, w // b
    sn, sh, sw, _ = contiguous_strides((n, h, w, c))
    shape = (n, oh, ow, b, b * c)  # bx and c together are one run of the input row
    return [Move(0, 0, shape, 0, (sn, b * sh, b * sw, sh, 1), 0, contiguous_strides(shape))]


def depth_to_space_moves(op: Op) -> list[Move]:
    # Input viewed as [n, h, w, by, bx, c']; output element at [n, h*b+by, w*b+bx, c'].
    n, h, w, c, b = _check(op)
    oc = c // (b * b)
    sn, sh, sw, _ = contiguous_strides((n, h * b, w * b, oc))
    shape = (n, h, w, b, b * oc)
    return [Move(0, 0, shape, 0, contiguous_strides(shape), 0, (sn, b * sh, b * sw, sh, 1))]


register_moves(SPACE_TO_DEPTH, space_to_depth_moves)
register_moves(DEPTH_TO_SPACE, depth_to_space_moves)
SPACE_TO_DEPTH_OPDEF = register(OpDef(SPACE_TO_DEPTH, BlockAttrs, space_to_depth_shapes, no_macs, full_input,
                                      space_to_depth_evaluate))
DEPTH_TO_SPACE_OPDEF = register(OpDef(DEPTH_TO_SPACE, BlockAttrs, depth_to_space_shapes, no_macs, full_input,
                                      depth_to_space_evaluate))
