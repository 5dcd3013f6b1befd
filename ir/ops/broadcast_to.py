"""BROADCAST_TO of int8 or int16 tensors (TFLM's broadcast_to.cc, reference BroadcastTo):
the input repeated along the axes where it has extent 1 (and the leading axes it lacks)
up to a constant shape of rank at most 5. tflite-micro copies raw bytes for any type;
mcuc runs int8 and int16. One move whose source strides are 0 on the repeated axes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import BROADCAST_TO
from .movement import Move, contiguous_strides, register_moves, require_same_dtype

MAX_RANK = 5


@dataclass(frozen=True)
class BroadcastToAttrs:
    shape: tuple[int, ...]


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    require_same_dtype(op)
    x, shape = op.input.shape, tuple(op.attrs.shape)
    require(len(shape) <= MAX_RANK and len(x) <= len(shape), op,
            f"shape {list(shape)} must have at most {MAX_RANK} axes and at least the input's {len(x)}")
    extra = len(shape) - len(x)
    for i, d in enumerate(x):
        require(d == 1 or d == shape[extra + i], op,
                f"input shape {list(x)} does not broadcast to {list(shape)} (axis {extra + i})")
    require(all(d >= 1 for d in shape), op, f"shape {list(shape)} must be positive")
    return [shape]


def full_input(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.broadcast_to(inputs[0], op.attrs.shape))]


def moves(op: Op) -> list[Move]:
    shape = tuple(op.attrs.shape)
    padded = (1,) * (len(shape) - len(op.input.shape)) + tuple(op.input.shape)
    src = tuple(0 if d == 1 else s for d, s in zip(padded, contiguous_strides(padded)))
    return [Move(0, 0, shape, 0, src, 0, contiguous_strides(shape))]


register_moves(BROADCAST_TO, moves)
OPDEF = register(OpDef(BROADCAST_TO, BroadcastToAttrs, infer_shapes, no_macs, full_input, evaluate))
