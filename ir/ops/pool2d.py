"""AVERAGE_POOL_2D and MAX_POOL_2D over NHWC int8 (or int16) tensors.

TFLite Micro's reference kernels: a window covers only the valid (non-padding) input
elements. Average pool divides their int32 sum by their count, rounding half away
from zero with C's truncating division; max pool takes their maximum. Then the fused
activation clamp. Input and output share one quantization (TFLite Micro requires it),
so there is no requantization.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..op import Op
from ..numerics import ONNXRUNTIME, TFLITE_Q31, Numerics, OrtFloat
from ..ort_numerics import int_to_f32, rne_to_int
from ..region import Region, window_input_range
from . import OpDef, Trait, register
from .common import Padding2D, pad_spatial, require, window_output_size, windows
from .kinds import AVERAGE_POOL_2D, MAX_POOL_2D


@dataclass(frozen=True)
class Pool2DAttrs:
    filter: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: Padding2D = field(default_factory=Padding2D)
    act_min: int = -128
    act_max: int = 127
    # AVERAGE_POOL_2D: TFLiteQ31 (integer mean, one quantization); OrtInteger
    # (QLinearAveragePool: float32 mean of dequantized values, requantized on the uint8
    # values where offset is 128; evaluate_average_onnxruntime); OrtFloat (the QDQ group
    # left in float: the same float mean, then QuantizeLinear, ir/ops/ort_float.py).
    numerics: Numerics = TFLITE_Q31
    # Divide by the whole window (ONNX count_include_pad=1) instead of its valid part.
    count_include_pad: bool = False


def _window_has_valid_element(in_size: int, out_size: int, kernel: int, stride: int, pad_before: int) -> bool:
    """Whether every window overlaps the input (the reference kernel fails otherwise)."""
    return pad_before < kernel and (out_size - 1) * stride - pad_before < in_size


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    x = op.input
    a: Pool2DAttrs = op.attrs
    require(len(x.shape) == 4, op, f"input must be 4-D NHWC, got shape {x.shape}")
    require(min(a.filter) >= 1, op, f"filter {a.filter} must be positive")
    require(min(a.stride) >= 1, op, f"stride {a.stride} must be positive")
    p = a.padding
    require(min(p.top, p.bottom, p.left, p.right) >= 0, op, f"negative padding {p}")
    require(a.act_min <= a.act_max, op, f"activation range [{a.act_min}, {a.act_max}] is empty")
    out = op.output
    if x.quant is not None and out.quant is not None and a.numerics.rule != ONNXRUNTIME:
        require(abs(x.quant.scalar_scale - out.quant.scalar_scale) <= 1e-6
                and x.quant.scalar_zero_point == out.quant.scalar_zero_point, op,
                "input and output quantization must be equal (pooling does not requantize)")
    oh = window_output_size(x.shape[1], a.filter[0], a.stride[0], 1, p.top, p.bottom)
    ow = window_output_size(x.shape[2], a.filter[1], a.stride[1], 1, p.left, p.right)
    require(oh > 0 and ow > 0, op, f"filter {a.filter[0]}x{a.filter[1]} does not fit the padded input")
    require(_window_has_valid_element(x.shape[1], oh, a.filter[0], a.stride[0], p.top)
            and _window_has_valid_element(x.shape[2], ow, a.filter[1], a.stride[1], p.left), op,
            f"padding {p} leaves a window of filter {a.filter} with no input element")
    return [(x.shape[0], oh, ow, x.shape[3])]


def macs(op: Op) -> int:
    """Pooling counts no MACs (the project's MAC figures count conv, depthwise and FC)."""
    return 0


def input_regions(op: Op, out: Region) -> list[Region | None]:
    x = op.input
    a: Pool2DAttrs = op.attrs
    rows = window_input_range(*out.axis(1), a.stride[0], a.padding.top, a.filter[0], 1, x.shape[1])
    cols = window_input_range(*out.axis(2), a.stride[1], a.padding.left, a.filter[1], 1, x.shape[2])
    return [Region((out.start[0], rows[0], cols[0], out.start[3]), (out.stop[0], rows[1], cols[1], out.stop[3]))]


def _pool_windows(x: np.ndarray, a: Pool2DAttrs, out_shape: tuple[int, ...], fill) -> np.ndarray:
    """[N, OH, OW, FH, FW, C] windows of x padded with `fill`."""
    _, oh, ow, _ = out_shape
    return windows(pad_spatial(x, a.padding, fill), a.filter[0], a.filter[1], oh, ow, a.stride, (1, 1))


def evaluate_average_onnxruntime(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's QLinearAveragePool: each input dequantized in float32
    (x_scale * (x - x_zp)), the window's valid elements summed in float32 row by row,
    divided by the element count (the whole window with count_include_pad), then
    y = clamp(nearbyint(mean / y_scale + y_zp)) -- the zero point is added in float,
    before the rounding, on the model's own (uint8: +128) values."""
    a: Pool2DAttrs = op.attrs
    x_t, y_t = op.input, op.output
    real = np.float32(x_t.quant.scale[0]) * int_to_f32(inputs[0].astype(np.int64) - x_t.quant.scalar_zero_point)
    _, oh, ow, _ = y_t.shape
    padded = pad_spatial(real, a.padding, 0.0)
    total = np.zeros(y_t.shape, np.float32)
    sh, sw = a.stride
    for ky in range(a.filter[0]):
        for kx in range(a.filter[1]):
            total = total + padded[:, ky: ky + (oh - 1) * sh + 1: sh, kx: kx + (ow - 1) * sw + 1: sw, :]
    if a.count_include_pad:
        count = np.float32(a.filter[0] * a.filter[1])
    else:
        ones = np.ones(x_t.shape[:3] + (1,), np.int64)
        count = _pool_windows(ones, a, y_t.shape[:3] + (1,), 0).sum(axis=(3, 4)).astype(np.float32)
    mean = total / count
    if isinstance(a.numerics, OrtFloat):
        from .ort_float import quantize_with_clamp

        return [quantize_with_clamp(op, mean)]
    offset = a.numerics.offset
    zp = np.float32(y_t.quant.scalar_zero_point + offset)
    q = rne_to_int(mean / np.float32(y_t.quant.scale[0]) + zp) - offset
    lo, hi = np.iinfo(np.dtype(y_t.dtype)).min, np.iinfo(np.dtype(y_t.dtype)).max
    y = np.clip(np.clip(q, lo, hi), a.act_min, a.act_max)
    return [y.astype(y_t.dtype)]


def evaluate_average(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    a: Pool2DAttrs = op.attrs
    if a.numerics.rule == ONNXRUNTIME:
        return evaluate_average_onnxruntime(op, inputs)
    x = inputs[0].astype(np.int64)
    out_shape = op.output.shape
    total = _pool_windows(x, a, out_shape, 0).sum(axis=(3, 4))
    count = _pool_windows(np.ones_like(x), a, out_shape, 0).sum(axis=(3, 4))
    # (acc +- count/2) / count with C's truncation: round half away from zero.
    half = count // 2
    numerator = np.where(total > 0, total + half, total - half)
    quotient = np.sign(numerator) * (np.abs(numerator) // count)
    y = np.clip(quotient, a.act_min, a.act_max)
    return [y.astype(op.output.dtype)]


def evaluate_max(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    a: Pool2DAttrs = op.attrs
    x = inputs[0]
    # Padding with the type's lowest value never wins the max: only valid elements count.
    lowest = np.iinfo(x.dtype).min if np.issubdtype(x.dtype, np.integer) else -np.inf
    y = _pool_windows(x, a, op.output.shape, lowest).max(axis=(3, 4))
    y = np.clip(y, a.act_min, a.act_max)
    return [y.astype(op.output.dtype)]


AVERAGE_POOL_2D_OPDEF = register(OpDef(AVERAGE_POOL_2D, Pool2DAttrs, infer_shapes, macs, input_regions, evaluate_average,
                                        traits={Trait.WINDOW, Trait.PATCHABLE}))
MAX_POOL_2D_OPDEF = register(OpDef(MAX_POOL_2D, Pool2DAttrs, infer_shapes, macs, input_regions, evaluate_max,
                                    traits={Trait.WINDOW, Trait.PATCHABLE}))
