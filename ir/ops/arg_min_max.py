"""ARG_MAX and ARG_MIN of int8 along one constant axis (TFLM's arg_min_max.cc, reference
ArgMinMax): int32 axis (negative counts from the back), int32 output, the axis removed.
The first index holding the largest (smallest) stored value wins: later equal values
do not replace it (a strict comparison). Quantization plays no part.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import no_macs, require
from .kinds import ARG_MAX, ARG_MIN


@dataclass(frozen=True)
class ArgMinMaxAttrs:
    axis: int


def axis_of(op: Op) -> int:
    rank = len(op.input.shape)
    a = op.attrs.axis
    require(-rank <= a < rank, op, f"axis {a} is out of range for an input of rank {rank}")
    return a + rank if a < 0 else a


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    x, y = op.input, op.output
    require(x.dtype == "int8", op, f"input {x.name!r} is {x.dtype}; supported: int8")
    require(y.dtype == "int32", op, f"output {y.name!r} is {y.dtype}; tflite-micro writes int32 indices only")
    axis = axis_of(op)
    return [x.shape[:axis] + x.shape[axis + 1:]]


def full_input(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def pick(op: Op):
    """numpy's argmax or argmin: both return the first of equal values, as the kernel."""
    return np.argmax if op.kind == ARG_MAX else np.argmin


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    y = pick(op)(np.asarray(inputs[0]), axis=axis_of(op))
    return [np.ascontiguousarray(y).astype(np.int32).reshape(op.output.shape)]


ARG_MAX_OPDEF = register(OpDef(ARG_MAX, ArgMinMaxAttrs, infer_shapes, no_macs, full_input, evaluate))
ARG_MIN_OPDEF = register(OpDef(ARG_MIN, ArgMinMaxAttrs, infer_shapes, no_macs, full_input, evaluate))
