"""MUL of two int8 (or int16, zero points 0) tensors with broadcasting.

TFLite Micro's quantized MUL (mul_common.cc, reference/integer_ops/mul.h): the product of
the zero-point-corrected inputs, in int32, is scaled to the output by one multiplier
(input1 scale * input2 scale / output scale, in double), then offset and clamped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from ..op import Op
from ..numerics import ONNXRUNTIME, TFLITE_Q31, Numerics, OrtFloat
from ..ort_numerics import int_to_f32, rne_to_int
from . import OpDef, Trait, register
from .common import require
from .kinds import MUL
from .add import binary_infer_shapes, binary_input_regions


@dataclass(frozen=True)
class MulAttrs:
    act_min: int = -128
    act_max: int = 127
    # TFLiteQ31: TFLM's Q31 multiplier. OrtInteger: QLinearMul's float32 kernel
    # (evaluate_onnxruntime, on the uint8 values where offset is 128). OrtFloat: the group
    # left in float, DQ -> float Mul -> QuantizeLinear.
    numerics: Numerics = TFLITE_Q31


@dataclass(frozen=True)
class MulParams:
    """The integer constants of one int8 MUL, as TFLM's Prepare computes them."""

    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int


def mul_params(op: Op) -> MulParams:
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    s1, s2, so = (float(np.float64(t.quant.scale[0])) for t in (x1, x2, y))
    require(min(s1, s2, so) > 0.0, op, f"scales must be positive, got {s1:.6g} * {s2:.6g} -> {so:.6g}")
    multiplier, shift = quantize_multiplier(s1 * s2 / so)
    return MulParams(-x1.quant.scalar_zero_point, -x2.quant.scalar_zero_point, y.quant.scalar_zero_point,
                     multiplier, shift)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    shapes = binary_infer_shapes(op)
    if op.output.dtype == "int16":
        for t in (op.inputs[0], op.inputs[1], op.output):
            require(t.quant.scalar_zero_point == 0, op,
                    f"int16 tensor {t.name!r} has zero point {t.quant.scalar_zero_point}; TFLite Micro needs 0")
    mul_params(op)
    return shapes


def macs(op: Op) -> int:
    return 0


def evaluate_onnxruntime(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's QLinearMul (MLAS SSE2 kernel on x86): the exact product
    (a - za) * (b - zb) as float32, times ratio = sa * sb / sc (float32, left to right),
    plus float(zc) on the model's own (uint8: +128) zero point, rounded half to even,
    saturated to the type."""
    a: MulAttrs = op.attrs
    x1, x2, y_t = op.inputs[0], op.inputs[1], op.output
    sa, sb, sc = (np.float32(t.quant.scale[0]) for t in (x1, x2, y_t))
    ratio = np.float32(np.float32(sa * sb) / sc)
    product = ((inputs[0].astype(np.int64) - x1.quant.scalar_zero_point)
               * (inputs[1].astype(np.int64) - x2.quant.scalar_zero_point))
    offset = a.numerics.offset
    value = int_to_f32(product) * ratio + np.float32(y_t.quant.scalar_zero_point + offset)
    lo, hi = np.iinfo(np.dtype(y_t.dtype)).min, np.iinfo(np.dtype(y_t.dtype)).max
    y = np.clip(rne_to_int(value) - offset, lo, hi)
    y = np.clip(y, a.act_min, a.act_max)
    return [np.broadcast_to(y, y_t.shape).astype(y_t.dtype)]


def evaluate_onnxruntime_float(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """DequantizeLinear -> float Mul -> QuantizeLinear as onnxruntime runs it unfused."""
    from ..ort_numerics import quantize_linear

    x1, x2, y_t = op.inputs[0], op.inputs[1], op.output
    real = [int_to_f32(x.astype(np.int64) - t.quant.scalar_zero_point) * np.float32(t.quant.scale[0])
            for x, t in zip(inputs, (x1, x2))]
    lo, hi = np.iinfo(np.dtype(y_t.dtype)).min, np.iinfo(np.dtype(y_t.dtype)).max
    y = quantize_linear(real[0] * real[1], y_t.quant.scale[0], y_t.quant.scalar_zero_point, int(lo), int(hi))
    y = np.clip(y, op.attrs.act_min, op.attrs.act_max)
    return [np.broadcast_to(y, y_t.shape).astype(y_t.dtype)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    if isinstance(op.attrs.numerics, OrtFloat):
        return evaluate_onnxruntime_float(op, inputs)
    if op.attrs.numerics.rule == ONNXRUNTIME:
        return evaluate_onnxruntime(op, inputs)
    p = mul_params(op)
    a: MulAttrs = op.attrs
    product = (inputs[0].astype(np.int64) + p.input1_offset) * (inputs[1].astype(np.int64) + p.input2_offset)
    y = multiply_by_quantized_multiplier(product, p.output_multiplier, p.output_shift) + p.output_offset
    return [np.clip(y, a.act_min, a.act_max).astype(op.output.dtype)]


OPDEF = register(OpDef(MUL, MulAttrs, infer_shapes, macs, binary_input_regions, evaluate,
                        traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
