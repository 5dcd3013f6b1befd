"""MEAN over constant axes (the reduction-axes input becomes the `axes` attribute).

int8 semantics of the pinned TFLite Micro (reference QuantizedMeanOrSum, used for every
int8 MEAN whatever the axes and whether or not input and output quantization agree):

    (M, s) = QuantizeMultiplier(double(in_scale) / double(out_scale))
    n      = number of reduced elements;  k = min(floor(log2 n), 32, 31 + s)
    M'     = int32((int64(M) << k) / n)   (C division, truncating);  s' = s - k
    y      = clamp(MultiplyByQuantizedMultiplier(int32(sum - in_zp * n), M', s') + out_zp)

Older TFLite Micro releases took other paths (a plain integer division when the
quantizations were equal, a float path otherwise); the tests pin this one against the
oracle.

ONNX MEANs onnxruntime leaves in float (OrtFloat numerics: DequantizeLinear -> float op
-> QuantizeLinear) follow one of two float kernels, OrtFloat.mean_kernel: a
GlobalAveragePool (MLAS's pool kernel) or a ReduceMean (an Eigen sum);
ir/ops/ort_float.py states both summation orders.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, wrap_int32
from ..op import Op
from ..numerics import ONNXRUNTIME, ORT_REDUCE_MEAN, TFLITE_Q31, Numerics, OrtFloat
from ..ort_numerics import requantize_output
from ..region import Region
from . import OpDef, register
from .common import dtype_range, require
from .kinds import MEAN


@dataclass(frozen=True)
class MeanAttrs:
    axes: tuple[int, ...]
    keep_dims: bool = False
    # TFLiteQ31: TFLM's folded Q31 multiplier. OrtInteger: QLinearGlobalAveragePool,
    # float32 scale in_scale / (out_scale * count), round half to even. OrtFloat: the group
    # left in float, summed in the order of its mean_kernel (MLAS's GlobalAveragePool or
    # ReduceMean's Eigen sum: the same values in other orders).
    numerics: Numerics = TFLITE_Q31


def resolved_axes(op: Op) -> tuple[int, ...]:
    """The reduced axes, non-negative, without repeats, in ascending order."""
    rank = len(op.input.shape)
    axes = op.attrs.axes
    require(all(-rank <= ax < rank for ax in axes), op,
            f"axes {tuple(axes)} out of range for a {rank}-D input")
    return tuple(sorted({ax % rank for ax in axes}))


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    x = op.input
    a: MeanAttrs = op.attrs
    axes = resolved_axes(op)
    if a.keep_dims:
        return [tuple(1 if i in axes else d for i, d in enumerate(x.shape))]
    return [tuple(d for i, d in enumerate(x.shape) if i not in axes)]


def macs(op: Op) -> int:
    """MEAN counts no MACs (the project's MAC figures count conv, depthwise and FC)."""
    return 0


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """Reduced axes are read whole; the others pass the output region through."""
    x = op.input
    axes = resolved_axes(op)
    kept = iter(range(len(out.start))) if not op.attrs.keep_dims else None
    start, stop = [], []
    for i, d in enumerate(x.shape):
        j = i if kept is None else (None if i in axes else next(kept))
        if i in axes:
            start.append(0)
            stop.append(d)
        else:
            start.append(out.start[j])
            stop.append(out.stop[j])
    return [Region(tuple(start), tuple(stop))] + [None] * (len(op.inputs) - 1)


def mean_requant_params(op: Op, count: int) -> tuple[int, int]:
    """The (multiplier, shift) that folds 1/count into in_scale/out_scale."""
    x_t, out_t = op.input, op.output
    multiplier, shift = quantize_multiplier(float(x_t.quant.scale[0]) / float(out_t.quant.scale[0]))
    # QuantizeMultiplier keeps shift >= -31, so k >= 0; 2^k <= count keeps the folded
    # multiplier below the original one, inside int32.
    k = min(count.bit_length() - 1, 32, 31 + shift)
    # Python's // floors; both operands are non-negative here, so it truncates like C.
    return (multiplier << k) // count, shift - k


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    x_t, out_t = op.input, op.output
    require(x_t.quant is not None and out_t.quant is not None, op, "input and output must be quantized")
    axes = resolved_axes(op)
    x = inputs[0].astype(np.int64)
    count = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    if count == 0:
        return [np.zeros(out_t.shape, out_t.dtype)]
    total = x.sum(axis=axes).reshape(out_t.shape)
    if isinstance(op.attrs.numerics, OrtFloat):
        from .ort_float import float_mean, global_average_pool_float, reduce_mean_float

        reduce_mean = op.attrs.numerics.mean_kernel == ORT_REDUCE_MEAN
        return [float_mean(op, inputs, reduce_mean_float if reduce_mean else global_average_pool_float)]
    if op.attrs.numerics.rule == ONNXRUNTIME:
        scale = np.float32(x_t.quant.scale[0]) / (np.float32(out_t.quant.scale[0]) * np.float32(count))
        lo, hi = dtype_range(out_t.dtype)
        y = requantize_output(wrap_int32(total - x_t.quant.scalar_zero_point * count), scale,
                              out_t.quant.scalar_zero_point, lo, hi)
        return [y.astype(out_t.dtype)]
    multiplier, shift = mean_requant_params(op, count)
    shifted = wrap_int32(total - x_t.quant.scalar_zero_point * count)
    y = multiply_by_quantized_multiplier(shifted, multiplier, shift) + out_t.quant.scalar_zero_point
    lo, hi = dtype_range(out_t.dtype)
    return [np.clip(y, lo, hi).astype(out_t.dtype)]


OPDEF = register(OpDef(MEAN, MeanAttrs, infer_shapes, macs, input_regions, evaluate))
