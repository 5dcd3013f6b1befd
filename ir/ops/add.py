"""ADD of two int8 (or int16) tensors with broadcasting (TFLite's two-stage requantization).

TFLite Micro's quantized ADD (add_common.cc, reference/integer_ops/add.h, and for int16
reference/add.h's general-scale path): both inputs are shifted left by 20 bits (15 for
int16), scaled by their own multiplier (input scale / twice the larger
input scale) onto a common scale, summed, and the sum is scaled to the output by a
third multiplier, then offset and clamped to the fused activation range. Broadcasting
follows numpy's rules (TFLM's BroadcastBinaryOpSimple, any rank up to 6 here).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier_smaller_than_one, quantize_multiplier
from ..op import Op
from ..numerics import ONNXRUNTIME, TFLITE_Q31, Numerics, OrtFloat
from ..ort_numerics import fma_f32, int_to_f32, rne_to_int
from ..region import Region
from . import OpDef, Trait, register
from .common import dtype_range, require
from .kinds import ADD

# Largest rank a broadcasting binary op accepts (TFLM's 6-D broadcast helpers).
MAX_BROADCAST_RANK = 6


@dataclass(frozen=True)
class AddAttrs:
    act_min: int = -128
    act_max: int = 127
    # TFLiteQ31: TFLM's two-stage Q31 rescale. OrtInteger: QLinearAdd's float32 kernel
    # (evaluate_onnxruntime); on uint8 its rounding sees the original values, so they are
    # restored (+offset) before it and removed after. OrtFloat: the group left in float
    # (DequantizeLinear -> Add -> QuantizeLinear, evaluate_onnxruntime_float).
    numerics: Numerics = TFLITE_Q31


@dataclass(frozen=True)
class AddParams:
    """The integer constants of one int8 ADD, as TFLM's Prepare computes them; backends
    emit these, the interpreter uses them."""

    left_shift: int
    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int


def broadcast_shape(op: Op, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's broadcast of two shapes, or MCUCError naming the op."""
    require(max(len(a), len(b)) <= MAX_BROADCAST_RANK, op,
            f"inputs of rank {len(a)} and {len(b)} exceed the supported broadcast rank {MAX_BROADCAST_RANK}")
    rank = max(len(a), len(b))
    a1 = (1,) * (rank - len(a)) + tuple(a)
    b1 = (1,) * (rank - len(b)) + tuple(b)
    out = []
    for i, (da, db) in enumerate(zip(a1, b1)):
        require(da == db or da == 1 or db == 1, op,
                f"input shapes {list(a)} and {list(b)} do not broadcast (axis {i}: {da} vs {db})")
        out.append(db if da == 1 else da)
    return tuple(out)


def broadcast_input_region(in_shape: tuple[int, ...], out: Region) -> Region:
    """The region of a broadcast input read for an output region: the trailing axes
    of the output region, collapsed to [0, 1) where the input has extent 1."""
    offset = len(out.start) - len(in_shape)
    start, stop = [], []
    for axis, size in enumerate(in_shape):
        a, b = out.axis(axis + offset)
        if size == 1:
            a, b = (0, 1) if b > a else (0, 0)
        start.append(a)
        stop.append(b)
    return Region(tuple(start), tuple(stop))


def binary_infer_shapes(op: Op) -> list[tuple[int, ...]]:
    """Shape rule shared by ADD, SUB and MUL: two quantized inputs of the output's dtype
    (int8 or int16), broadcasting, a legal clamp range."""
    require(len(op.inputs) == 2 and all(t is not None for t in op.inputs), op, "takes exactly two inputs")
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    require(y.dtype in ("int8", "int16"), op, f"output {y.name!r} is {y.dtype}; only int8 and int16 are supported")
    for t in (x1, x2):
        require(t.dtype == y.dtype, op, f"input {t.name!r} is {t.dtype} but the output is {y.dtype}")
    for t in (x1, x2, y):
        require(t.quant is not None and not t.quant.per_channel, op,
                f"tensor {t.name!r} must have per-tensor quantization")
    lo, hi = dtype_range(y.dtype)
    a = op.attrs
    require(lo <= a.act_min <= a.act_max <= hi, op,
            f"activation clamp [{a.act_min}, {a.act_max}] must be an ordered range inside [{lo}, {hi}]")
    return [broadcast_shape(op, x1.shape, x2.shape)]


def binary_input_regions(op: Op, out: Region) -> list[Region | None]:
    return [None if t.is_constant else broadcast_input_region(t.shape, out) for t in op.inputs]


def add_params(op: Op) -> AddParams:
    """TFLM's CalculateOpDataAdd (double arithmetic on float32 scales)."""
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    left_shift = 15 if y.dtype == "int16" else 20
    s1, s2, so = (float(np.float64(t.quant.scale[0])) for t in (x1, x2, y))
    require(min(s1, s2, so) > 0.0, op, f"scales must be positive, got {s1:.6g}, {s2:.6g} -> {so:.6g}")
    twice_max = 2 * max(s1, s2)
    real1, real2 = s1 / twice_max, s2 / twice_max
    real_out = twice_max / ((1 << left_shift) * so)
    return rescale_params(op, left_shift, real1, real2, real_out)


def rescale_params(op: Op, left_shift: int, real1: float, real2: float, real_out: float) -> AddParams:
    """AddParams from the three real rescale factors (each must lie in (0, 1), as TFLM's
    QuantizeMultiplierSmallerThanOneExp requires)."""
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    for name, real in (("input 1", real1), ("input 2", real2), ("output", real_out)):
        require(0.0 < real < 1.0, op,
                f"{name} rescale factor {real:.6g} is outside (0, 1): TFLite Micro rejects these "
                "scales (inputs' scales must be positive and the output scale not tiny)")
    m1, sh1 = quantize_multiplier(real1)
    m2, sh2 = quantize_multiplier(real2)
    mo, sho = quantize_multiplier(real_out)
    return AddParams(left_shift, -x1.quant.scalar_zero_point, m1, sh1, -x2.quant.scalar_zero_point, m2, sh2,
                     y.quant.scalar_zero_point, mo, sho)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    shapes = binary_infer_shapes(op)
    if op.attrs.numerics.rule == ONNXRUNTIME:
        x1, x2 = op.inputs[0], op.inputs[1]
        require(x1.shape == x2.shape or x1.size == 1 or x2.size == 1, op,
                f"input shapes {list(x1.shape)} and {list(x2.shape)}: onnxruntime's QLinearAdd is supported for "
                "equal shapes or a one-element input only")
        return shapes
    add_params(op)  # rejects scales TFLM would refuse
    return shapes


def macs(op: Op) -> int:
    return 0


def evaluate_onnxruntime_float(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """DequantizeLinear -> float Add -> QuantizeLinear as onnxruntime runs it unfused:
    float32(x - zp) * scale per input, one float32 sum, QuantizeLinear of the sum."""
    from ..ort_numerics import quantize_linear

    x1, x2, y_t = op.inputs[0], op.inputs[1], op.output
    real = [int_to_f32(x.astype(np.int64) - t.quant.scalar_zero_point) * np.float32(t.quant.scale[0])
            for x, t in zip(inputs, (x1, x2))]
    lo, hi = dtype_range(y_t.dtype)
    y = quantize_linear(real[0] + real[1], y_t.quant.scale[0], y_t.quant.scalar_zero_point, lo, hi)
    y = np.clip(y, op.attrs.act_min, op.attrs.act_max)
    return [np.broadcast_to(y, y_t.shape).astype(y_t.dtype)]


def evaluate_onnxruntime(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's QLinearAdd (MLAS AVX2 kernel, float32 throughout):
    ra = sa / sc, rb = sb / sc; fixed = zc - fma(ra, za, rb * zb) (GCC contracts the
    source's ra * za + rb * zb; measured against the pinned build);
    y = rne(fma(a, ra, fma(b, rb, fixed))), saturated to the type. A one-element
    input is folded into the fixed part by one more fused multiply-add."""
    a: AddAttrs = op.attrs
    x1, x2, y_t = op.inputs[0], op.inputs[1], op.output
    off = a.numerics.offset
    sa, sb, sc = (np.float32(t.quant.scale[0]) for t in (x1, x2, y_t))
    za, zb, zc = (np.float32(t.quant.scalar_zero_point + off) for t in (x1, x2, y_t))
    ra, rb = np.float32(sa / sc), np.float32(sb / sc)
    fixed = np.float32(zc - fma_f32(ra, za, np.float32(rb * zb)))
    va = int_to_f32(inputs[0].astype(np.int64) + off)
    vb = int_to_f32(inputs[1].astype(np.int64) + off)
    if x1.size == 1 and x2.size != 1:
        v = fma_f32(vb, rb, fma_f32(va.reshape(()), ra, fixed))
    elif x2.size == 1 and x1.size != 1:
        v = fma_f32(va, ra, fma_f32(vb.reshape(()), rb, fixed))
    else:
        v = fma_f32(va, ra, fma_f32(vb, rb, fixed))
    lo, hi = dtype_range(y_t.dtype)
    y = np.clip(rne_to_int(v) - off, lo, hi)
    y = np.clip(y, a.act_min, a.act_max)
    return [np.broadcast_to(y, y_t.shape).astype(y_t.dtype)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    if isinstance(op.attrs.numerics, OrtFloat):
        return evaluate_onnxruntime_float(op, inputs)
    if op.attrs.numerics.rule == ONNXRUNTIME:
        return evaluate_onnxruntime(op, inputs)
    return [evaluate_rescaled(op, add_params(op), inputs, np.add)]


def evaluate_rescaled(op: Op, p: AddParams, inputs: list[np.ndarray], combine) -> np.ndarray:
    """TFLM's two-stage quantized ADD and SUB: each input, offset and shifted left, is
    rescaled onto twice the larger input scale; `combine` (add or subtract) joins them;
    the result is rescaled to the output, offset and clamped."""
    a = op.attrs

    def rescale(x: np.ndarray, offset: int, multiplier: int, shift: int) -> np.ndarray:
        shifted = (x.astype(np.int64) + offset) << p.left_shift
        return multiply_by_quantized_multiplier_smaller_than_one(shifted, multiplier, shift)

    s1 = rescale(inputs[0], p.input1_offset, p.input1_multiplier, p.input1_shift)
    s2 = rescale(inputs[1], p.input2_offset, p.input2_multiplier, p.input2_shift)
    raw = multiply_by_quantized_multiplier_smaller_than_one(combine(s1, s2), p.output_multiplier, p.output_shift)
    y = np.clip(raw + p.output_offset, a.act_min, a.act_max)
    return y.astype(op.output.dtype)


OPDEF = register(OpDef(ADD, AddAttrs, infer_shapes, macs, binary_input_regions, evaluate,
                        traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
