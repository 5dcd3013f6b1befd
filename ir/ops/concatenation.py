"""CONCATENATION of tensors along one axis.

TFLite Micro (concatenation.cc) does not requantize: for int8 every input must carry
exactly the output's scale and zero point, the fused activation must be NONE, and at
most 10 inputs are allowed. The kernel is then a plain copy of slices, which is what
`evaluate` does; models that break these rules are rejected here with the fix to apply.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..op import Op
from ..region import Region
from . import OpDef, Trait, register
from .common import dtype_range, require
from .kinds import CONCATENATION

# TFLM's kMaxInputNum.
MAX_INPUTS = 10
# TFLM's RuntimeShape::kMaxSmallSize.
MAX_RANK = 6


@dataclass(frozen=True)
class ConcatAttrs:
    axis: int
    act_min: int = -128
    act_max: int = 127


def positive_axis(op: Op) -> int:
    """The concatenation axis counted from the front (TFLM's CalculatePositiveAxis)."""
    axis = op.attrs.axis
    return axis + len(op.output.shape) if axis < 0 else axis


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    a: ConcatAttrs = op.attrs
    require(1 <= len(op.inputs) <= MAX_INPUTS and all(t is not None for t in op.inputs), op,
            f"takes 1 to {MAX_INPUTS} inputs, got {len(op.inputs)}")
    first, y = op.inputs[0], op.output
    rank = len(first.shape)
    require(1 <= rank <= MAX_RANK, op, f"inputs of rank {rank} are not supported (1 to {MAX_RANK})")
    require(-rank <= a.axis < rank, op, f"axis {a.axis} is out of range for rank-{rank} inputs")
    axis = a.axis + rank if a.axis < 0 else a.axis
    for t in op.inputs:
        require(t.dtype == y.dtype, op, f"input {t.name!r} is {t.dtype} but the output is {y.dtype}")
        require(len(t.shape) == rank, op, f"input {t.name!r} has rank {len(t.shape)}, expected {rank}")
        for i, (d, d0) in enumerate(zip(t.shape, first.shape)):
            require(i == axis or d == d0, op,
                    f"input {t.name!r} has shape {list(t.shape)}, which differs from {list(first.shape)} "
                    f"off the concatenation axis {axis}")
    if y.dtype in ("int8", "int16"):
        lo, hi = dtype_range(y.dtype)
        require((a.act_min, a.act_max) == (lo, hi), op,
                f"fused activation clamp [{a.act_min}, {a.act_max}] is not supported: TFLite Micro "
                "only runs CONCATENATION without a fused activation")
        require(y.quant is not None and not y.quant.per_channel, op,
                f"output {y.name!r} must have per-tensor quantization")
        for t in op.inputs:
            same = (t.quant is not None and not t.quant.per_channel
                    and np.float64(t.quant.scale[0]) == np.float64(y.quant.scale[0])
                    and t.quant.scalar_zero_point == y.quant.scalar_zero_point)
            require(same, op,
                    f"input {t.name!r} has quantization {t.quant!r} but the output has {y.quant!r}: TFLite "
                    "Micro requires equal scale and zero point on every input of an int8 CONCATENATION; "
                    "requantize the input with a QUANTIZE op first")
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in op.inputs)
    return [tuple(shape)]


def macs(op: Op) -> int:
    return 0


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """Each input's part of the output region, shifted into the input's coordinates;
    an input the region does not reach gets an empty region ([0, 0) on the axis)."""
    axis = positive_axis(op)
    start, stop = out.axis(axis)
    regions: list[Region | None] = []
    offset = 0
    for t in op.inputs:
        size = t.shape[axis]
        a, b = max(start - offset, 0), min(stop - offset, size)
        offset += size
        if t.is_constant:
            regions.append(None)
        else:
            regions.append(out.with_axis(axis, a, b) if b > a else out.with_axis(axis, 0, 0))
    return regions


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    y = np.concatenate([np.asarray(x) for x in inputs], axis=positive_axis(op))
    return [y.astype(op.output.dtype, copy=False)]


OPDEF = register(OpDef(CONCATENATION, ConcatAttrs, infer_shapes, macs, input_regions, evaluate,
                        traits={Trait.PATCHABLE}))
