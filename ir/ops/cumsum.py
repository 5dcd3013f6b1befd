"""CUMSUM of int8 along one constant axis, as tflite-micro computes it (kernels/cumsum.cc
Prepare, reference_ops::CumSum for int8).

- Prepare: input and output int8 of one shape; the input rescaled by s / 2s and the sum
  by 2s / (2^20 * output scale) (QuantizeMultiplierSmallerThanOneExp: the latter must be
  below 1, tflite-micro aborts otherwise); the axis a constant int32 (negative counts
  from the back).
- Eval, along the axis (from its end with `reverse`): the sum starts from the rescaled
  input offset (-zero point), as tflite-micro's loop does, and adds each rescaled
  (x - zero point) shifted left by 20 bits; each output is the sum after its element
  (before it with `exclusive`), rescaled, offset and clamped to int8. The sum wraps in
  int32 past about 15 elements of full-range inputs, as tflite-micro's compiled loop
  does; mcuc wraps it the same way on every backend.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import wrap_int32
from ..op import Op
from ..region import Region
from . import OpDef, register
from .add_n import AddNParams, output_of, rescale_params, rescaled
from .common import require
from .kinds import CUMSUM


@dataclass(frozen=True)
class CumsumAttrs:
    axis: int
    exclusive: bool = False
    reverse: bool = False


def cumsum_params(op: Op) -> AddNParams:
    require(len(op.inputs) == 1 and op.inputs[0] is not None and len(op.outputs) == 1, op,
            "takes one input (the axis is an attribute) and one output")
    x, y = op.input, op.output
    require(len(x.shape) >= 1, op, "the input needs at least one axis")
    require(-len(x.shape) <= op.attrs.axis < len(x.shape), op,
            f"axis {op.attrs.axis} is out of range for rank {len(x.shape)}")
    return rescale_params(op, x, y)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    cumsum_params(op)
    return [op.input.shape]


def macs(op: Op) -> int:
    return 0


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """An output reads its whole line along the axis (the sum runs from one end)."""
    if out.empty:
        return [out]
    axis = op.attrs.axis % len(op.input.shape)
    return [out.with_axis(axis, 0, op.input.shape[axis])]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = cumsum_params(op)
    a = op.attrs
    axis = a.axis % len(op.input.shape)
    x = np.moveaxis(np.asarray(inputs[0], np.int64), axis, -1)
    if a.reverse:
        x = x[..., ::-1]
    start = int(rescaled(p.input_offset, p))
    sums = wrap_int32(start + np.cumsum(rescaled(x + p.input_offset, p), axis=-1))
    if a.exclusive:
        sums = np.concatenate([np.full(sums.shape[:-1] + (1,), start, np.int64), sums[..., :-1]], axis=-1)
    y = output_of(sums, p)
    if a.reverse:
        y = y[..., ::-1]
    return [np.ascontiguousarray(np.moveaxis(y, -1, axis)).astype(np.int8)]


OPDEF = register(OpDef(CUMSUM, CumsumAttrs, infer_shapes, macs, input_regions, evaluate))
