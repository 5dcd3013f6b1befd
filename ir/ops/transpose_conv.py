"""TRANSPOSE_CONV of int8 NHWC tensors with int8 weights [out_ch, kh, kw, in_ch]
(per-channel or per-tensor scales) and an optional int32 bias (TFLM's transpose_conv.cc,
reference_integer_ops::TransposeConv); and of int16 activations (16x8) with an int64 or
int16 bias: the same scatter summed in int64 without zero points (the kernel ignores them,
so mcuc requires 0), TFLite's int64 MultiplyByQuantizedMultiplier per channel
(batch_matmul.multiply_int64) and the activation clamp, no output zero point.

The reference scatters: every input pixel (iy, ix) adds (x - x_zp) * w[oc, fy, fx, ic]
to output (iy * stride_h - pad_h + fy, ix * stride_w - pad_w + fx) when that lies inside
the output, in an int32 scratch; then per output element acc (+ bias), the per-channel
MultiplyByQuantizedMultiplier (double rounding) of double(in_scale) x
double(w_scale[oc]) / double(out_scale), the output zero point and the fused activation's
clamp. The weights' zero points are never read (mcuc refuses non-zero ones rather than
ignore them). The sums are exact integers, so mcuc's kernels gather instead (for each
output element, the taps whose input pixel exists) and need no scratch.

The output's height and width are the output tensor's: tflite-micro never reads the
op's output_shape input (input 0), and computes the padding from the *output* size, as
ComputePaddingHeightWidth(stride, 1, out_h, out_w, kh, kw, padding) does: with
n = ceil(out / stride) (SAME) or (out + stride - k) / stride truncated toward zero
(VALID), pad = max(0, (n - 1) * stride + k - out) / 2, the odd pixel dropped (only the
leading padding is used).

A patch stage runs the op on a region of its output: the input rows and columns whose
scatter reaches it (`input_regions`), and the region's own size and leading padding
(`region_attrs`, set by ir.patches.region_op); every kernel reads only the attributes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..fixedpoint import requantize_per_channel
from .batch_matmul import multiply_int64
from ..op import Op
from ..region import Region
from . import OpDef, Trait, register
from .common import channel_requant_params, require
from .kinds import TRANSPOSE_CONV


@dataclass(frozen=True)
class TransposeConvAttrs:
    out_hw: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)  # rows and columns before the first output (pad_h, pad_w)
    act_min: int = -128
    act_max: int = 127


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def tflm_padding(same: bool, out_size: int, kernel: int, stride: int) -> int:
    """The leading padding tflite-micro uses for one axis (see the module doc)."""
    n = (out_size + stride - 1) // stride if same else _trunc_div(out_size + stride - kernel, stride)
    return max(0, (n - 1) * stride + kernel - out_size) // 2


def _bias(op: Op):
    return op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] is not None else None


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(2 <= len(op.inputs) <= 3 and len(op.outputs) == 1, op,
            "takes an input, weights, an optional bias and one output")
    x, w, b = op.inputs[0], op.inputs[1], _bias(op)
    a: TransposeConvAttrs = op.attrs
    require(x.dtype in ("int8", "int16") and op.output.dtype == x.dtype, op,
            f"input {x.dtype} and output {op.output.dtype}: TRANSPOSE_CONV takes int8 or int16 (16x8) activations "
            "of one type")
    require(len(x.shape) == 4, op, f"input {x.name!r} must be 4-D NHWC, got shape {x.shape}")
    require(not x.is_constant, op, f"input {x.name!r} is a constant; mcuc compiles ops on computed values")
    require(w.is_constant and w.dtype == "int8" and len(w.shape) == 4, op,
            f"weights {w.name!r} must be a constant int8 [out_channels, kh, kw, in_channels] tensor, got "
            f"{w.dtype}{list(w.shape)}")
    require(w.shape[3] == x.shape[3], op,
            f"weights {list(w.shape)} take {w.shape[3]} input channels but the input has {x.shape[3]}")
    require(min(a.stride) >= 1, op, f"stride {a.stride} must be positive (stride_h, stride_w)")
    require(min(a.out_hw) >= 1 and min(a.pad) >= 0, op, f"output size {a.out_hw} and padding {a.pad} are illegal")
    require(a.act_min <= a.act_max, op, f"activation range [{a.act_min}, {a.act_max}] is empty")
    require(w.quant is not None and not np.any(w.quant.zero_point), op,
            "weights must be symmetric (zero point 0): tflite-micro's int8 kernel ignores the weights' zero points")
    require(w.quant.scale.size in (1, w.shape[0]), op,
            f"weights have {w.quant.scale.size} scales for {w.shape[0]} output channels (1 or one per channel)")
    if w.quant.per_channel:
        require(w.quant.axis == 0, op, f"weights are quantized along dimension {w.quant.axis}; tflite-micro "
                                       "takes per-channel scales along dimension 0 (output channels)")
    wide = x.dtype == "int16"
    bias_types = ("int64", "int16") if wide else ("int32",)
    if b is not None:
        require(b.dtype in bias_types and b.is_constant and b.shape == (w.shape[0],), op,
                f"bias {b.name!r} must be a constant {' or '.join(bias_types)} tensor of {w.shape[0]} values "
                f"(what tflite-micro reads for {x.dtype} activations), got {b.dtype}{list(b.shape)}")
    mult, shift = requant_params(op)  # input, weights and output quantized, multipliers below 2^30
    out_shape = (x.shape[0], a.out_hw[0], a.out_hw[1], w.shape[0])
    if wide:
        zps = (x.quant.scalar_zero_point, op.output.quant.scalar_zero_point)
        require(zps == (0, 0), op, f"int16 input and output zero points {zps}: tflite-micro's 16x8 kernel ignores "
                                   "them, so mcuc requires 0")
        require(int(np.max(shift)) <= 7, op, f"input scale x weight scale / output scale gives the shift "
                                             f"{int(np.max(shift))}: the int64 output stage takes at most 7")
        return [out_shape]
    # Every output element sums each weight at most once: bound the sum as the convolutions do.
    weights = np.abs(w.data.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1) * 255
    bias = np.zeros(w.shape[0], np.int64) if b is None else np.abs(b.data.astype(np.int64))
    require(int(np.max(weights + bias)) < 2**31, op,
            "the bias plus the largest sum of products could leave int32 (the reference would wrap)")
    return [out_shape]


def requant_params(op: Op) -> tuple[np.ndarray, np.ndarray]:
    return channel_requant_params(op, op.inputs[0], op.inputs[1], op.output)


def macs(op: Op) -> int:
    x, w = op.inputs[0], op.inputs[1]
    return int(np.prod(x.shape, dtype=np.int64)) * int(np.prod(w.shape[:3], dtype=np.int64))


def _needed(start: int, stop: int, stride: int, pad: int, kernel: int, size: int) -> tuple[int, int]:
    """[first, last) input coordinates an output range [start, stop) reads along one axis:
    those i with start <= i * stride - pad + f < stop for a tap f, widened down to
    floor((start + pad) / stride) at most so that the region's leading padding
    (pad + start - first * stride) stays >= 0 (the extra inputs land before the range)."""
    if stop <= start:
        return 0, 0
    first = max(0, -((kernel - 1 - start - pad) // stride))  # ceil((start + pad - kernel + 1) / stride)
    first = min(first, (start + pad) // stride, size)
    last = max(first, min(size, (stop - 1 + pad) // stride + 1))
    return first, last


def input_regions(op: Op, out: Region) -> list[Region | None]:
    """The input rows and columns whose scatter reaches the output region (all input
    channels: every output channel reads them all)."""
    x, w = op.inputs[0], op.inputs[1]
    a: TransposeConvAttrs = op.attrs
    rows = _needed(*out.axis(1), a.stride[0], a.pad[0], w.shape[1], x.shape[1])
    cols = _needed(*out.axis(2), a.stride[1], a.pad[1], w.shape[2], x.shape[2])
    region = Region((out.start[0], rows[0], cols[0], 0), (out.stop[0], rows[1], cols[1], x.shape[3]))
    return [region] + [None] * (len(op.inputs) - 1)


def region_attrs(op: Op, out: Region, x: Region) -> TransposeConvAttrs:
    """The attributes of the op computing output region `out` from input region `x`: the
    region's size, and the leading padding that puts its first output row and column where
    the full op has them (pad + out start - input start x stride)."""
    a: TransposeConvAttrs = op.attrs
    pad = tuple(a.pad[k] + out.start[1 + k] - x.start[1 + k] * a.stride[k] for k in range(2))
    return replace(a, out_hw=(out.shape[1], out.shape[2]), pad=pad)


def accumulators(op: Op, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The int32 sums before the bias, as the reference's scatter leaves them."""
    a: TransposeConvAttrs = op.attrs
    n, ih, iw, _ = x.shape
    oc, kh, kw, _ = w.shape
    (sh, sw), (ph, pw), (oh, ow) = a.stride, a.pad, a.out_hw
    xs = x.astype(np.int64) - op.inputs[0].quant.scalar_zero_point
    rows = max((ih - 1) * sh + kh, ph + oh)
    cols = max((iw - 1) * sw + kw, pw + ow)
    canvas = np.zeros((n, rows, cols, oc), np.int64)
    w64 = w.astype(np.int64)
    for fy in range(kh):
        for fx in range(kw):
            canvas[:, fy:fy + (ih - 1) * sh + 1:sh, fx:fx + (iw - 1) * sw + 1:sw, :] += xs @ w64[:, fy, fx, :].T
    return canvas[:, ph:ph + oh, pw:pw + ow, :]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    a: TransposeConvAttrs = op.attrs
    acc = accumulators(op, np.asarray(inputs[0]), np.asarray(inputs[1]))
    if _bias(op) is not None:
        acc = acc + np.asarray(inputs[2], np.int64)
    mult, shift = requant_params(op)
    if op.output.dtype == "int16":
        y = np.clip(multiply_int64(acc, mult, shift), a.act_min, a.act_max)
        return [y.astype(np.int16).reshape(op.output.shape)]
    y = requantize_per_channel(acc, mult, shift, op.output.quant.scalar_zero_point, a.act_min, a.act_max)
    return [y.astype(np.int8).reshape(op.output.shape)]


OPDEF = register(OpDef(TRANSPOSE_CONV, TransposeConvAttrs, infer_shapes, macs, input_regions, evaluate,
                       traits={Trait.PATCHABLE}))
