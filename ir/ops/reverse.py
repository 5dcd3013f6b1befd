"""REVERSE_V2 (TFLM's reverse.cc, reference Reverse) of int8 or int16 tensors: the
elements along each named axis in reverse order. tflite-micro takes int32 axes
(negative ones count from the back) that, sorted, must be consecutive (no gaps, no
repeats) and at least one; mcuc refuses the rest as it does. Elements are copied
unchanged: one move whose strides are negative on the reversed axes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import REVERSE_V2
from .movement import Move, contiguous_strides, register_moves, require_same_dtype


@dataclass(frozen=True)
class ReverseAttrs:
    axes: tuple[int, ...]


def resolved(op: Op) -> tuple[int, ...]:
    rank = len(op.input.shape)
    axes = op.attrs.axes
    require(1 <= len(axes) <= rank, op, f"{len(axes)} axes for an input of rank {rank} (1 to {rank})")
    for a in axes:
        require(-rank <= a < rank, op, f"axis {a} is out of range for an input of rank {rank}")
    out = sorted(a + rank if a < 0 else a for a in axes)
    require(all(b == a + 1 for a, b in zip(out, out[1:])), op,
            f"axes {list(axes)} are not consecutive once sorted: tflite-micro reverses consecutive axes only")
    return tuple(out)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    require_same_dtype(op)
    resolved(op)
    return [op.input.shape]


def full_input(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.flip(inputs[0], axis=resolved(op)))]


def moves(op: Op) -> list[Move]:
    shape = op.input.shape
    axes = resolved(op)
    strides = contiguous_strides(shape)
    src = sum((shape[a] - 1) * strides[a] for a in axes)
    return [Move(0, 0, shape, src, tuple(-s if i in axes else s for i, s in enumerate(strides)), 0, strides)]


register_moves(REVERSE_V2, moves)
OPDEF = register(OpDef(REVERSE_V2, ReverseAttrs, infer_shapes, no_macs, full_input, evaluate))
