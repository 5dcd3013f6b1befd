"""SUM of int8 or int16 over constant axes (TFLM's reduce.cc EvalSum, reference
QuantizedMeanOrSum with compute_sum; the clamp is the type's range).

    (M, s) = QuantizeMultiplier(double(in_scale) / double(out_scale))   (Prepare)
    n      = number of reduced elements (repeated axes count once)
    y      = clamp(MultiplyByQuantizedMultiplier(int32(sum - in_zp * n), M, s) + out_zp)

with the int32 sum and difference wrapping as the C does, and MultiplyByQuantizedMultiplier
the double-rounding one (its left shift wraps too). Axes are int32, negative ones count
from the back; keep_dims keeps reduced axes with extent 1. mcuc refuses a scale ratio of
2^31 or more (the shift would pass 31, beyond what the int32 kernels compute alike).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, wrap_int32
from ..op import Op
from ..region import Region
from . import OpDef, register
from .common import dtype_range, no_macs, require
from .kinds import SUM
from .movement import require_same_dtype
from .reduce_max import resolved_axes


@dataclass(frozen=True)
class SumAttrs:
    axes: tuple[int, ...]
    keep_dims: bool = False


@dataclass(frozen=True)
class SumParams:
    count: int
    input_zero_point: int
    multiplier: int
    shift: int
    output_zero_point: int


def sum_params(op: Op) -> SumParams:
    x, y = op.input, op.output
    for t in (x, y):
        require(t.quant is not None and not t.quant.per_channel, op, f"tensor {t.name!r} must be quantized per tensor")
    real = float(np.float64(x.quant.scale[0])) / float(np.float64(y.quant.scale[0]))
    require(0.0 < real < 2.0**31 and np.isfinite(real), op,
            f"input scale / output scale = {real:.6g} is outside (0, 2^31): the quantization scales are inconsistent")
    multiplier, shift = quantize_multiplier(real)
    axes = resolved_axes(op, op.attrs.axes)
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    return SumParams(count, x.quant.scalar_zero_point, multiplier, shift, y.quant.scalar_zero_point)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 1 and len(op.outputs) == 1, op, "takes one input and one output")
    require_same_dtype(op, ("int8", "int16"))
    sum_params(op)
    axes = resolved_axes(op, op.attrs.axes)
    x = op.input
    if op.attrs.keep_dims:
        return [tuple(1 if i in axes else d for i, d in enumerate(x.shape))]
    return [tuple(d for i, d in enumerate(x.shape) if i not in axes)]


def full_input(op: Op, out: Region) -> list[Region | None]:
    return [None if op.input.is_constant else Region.full(op.input.shape)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = sum_params(op)
    axes = resolved_axes(op, op.attrs.axes)
    total = np.sum(np.asarray(inputs[0], np.int64), axis=axes) if axes else np.asarray(inputs[0], np.int64)
    shifted = wrap_int32(wrap_int32(total) - wrap_int32(p.input_zero_point * p.count))
    y = wrap_int32(multiply_by_quantized_multiplier(shifted, p.multiplier, p.shift) + p.output_zero_point)
    lo, hi = dtype_range(op.output.dtype)
    return [np.ascontiguousarray(np.clip(y, lo, hi)).astype(op.output.dtype).reshape(op.output.shape)]


OPDEF = register(OpDef(SUM, SumAttrs, infer_shapes, no_macs, full_input, evaluate))
