"""FILL of int8 (TFLM's fill.cc, reference Fill): a constant shape (the dims input,
whose values must equal the output's shape) filled with one int8 scalar, given at run
time or constant. tflite-micro runs int8, int32 and float32 values; mcuc int8. One move
whose source strides are all 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import FILL
from .movement import Move, contiguous_strides, register_moves, require_same_dtype


@dataclass(frozen=True)
class FillAttrs:
    shape: tuple[int, ...]


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes the value and one output")
    require_same_dtype(op, ("int8",))
    require(op.input.shape == (), op, f"value {op.input.name!r} has shape {list(op.input.shape)}; it must be a scalar")
    shape = tuple(op.attrs.shape)
    require(all(d >= 1 for d in shape), op, f"dims {list(shape)} must be positive")
    return [shape]


def full_input(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.full(op.attrs.shape, np.asarray(inputs[0]).reshape(()), dtype=op.output.dtype)]


def moves(op: Op) -> list[Move]:
    shape = tuple(op.attrs.shape)
    return [Move(0, 0, shape, 0, (0,) * len(shape), 0, contiguous_strides(shape))]


register_moves(FILL, moves)
OPDEF = register(OpDef(FILL, FillAttrs, infer_shapes, no_macs, full_input, evaluate))
