"""SQUARED_DIFFERENCE of two int8 or int16 tensors with broadcasting (TFLM's
squared_difference.cc).

Prepare (int8): every zero point inside [-128, 127]; left_shift 7 (int16: every zero
point 0 and left_shift 0, the output clamped to the int16 range); twice the larger
input scale, in double, rescales each input (QuantizeMultiplierSmallerThanOneExp of
scale_i / twice_max); the output multiplier is twice_max^2 / (2^14 * out_scale)
(QuantizeMultiplier, so it may exceed 1). Per element: (x + offset) << 7 rescaled by the
input's multiplier (MultiplyByQuantizedMultiplierSmallerThanOneExp), the difference of
the two squared in int32 (at most 32640^2, no overflow), rescaled by
MultiplyByQuantizedMultiplier (double rounding, its left shift wrapping as the C does),
plus the output zero point, clamped to int8. There is no fused activation.
Broadcasting follows numpy's rules (TFLM's 6-D BroadcastBinaryFunction6DSlow).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import (multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_smaller_than_one,
                          quantize_multiplier, wrap_int32)
from ..op import Op
from . import OpDef, Trait, register
from .add import binary_input_regions, broadcast_shape
from .common import dtype_range, no_macs, require
from .kinds import SQUARED_DIFFERENCE

LEFT_SHIFT = 7
LEFT_SHIFT_INT16 = 0


@dataclass(frozen=True)
class SquaredDifferenceAttrs:
    """No attributes (TFLite's SquaredDifferenceOptions is empty)."""


@dataclass(frozen=True)
class SquaredDifferenceParams:
    """The integer constants TFLM's PrepareQuantized computes."""

    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    left_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int


def squared_difference_params(op: Op) -> SquaredDifferenceParams:
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    wide = y.dtype == "int16"
    left_shift = LEFT_SHIFT_INT16 if wide else LEFT_SHIFT
    for t in (x1, x2, y):
        require(t.quant is not None and not t.quant.per_channel, op,
                f"tensor {t.name!r} must have per-tensor quantization")
        if wide:
            require(t.quant.scalar_zero_point == 0, op,
                    f"tensor {t.name!r} has zero point {t.quant.scalar_zero_point}; TFLite Micro's int16 "
                    "SQUARED_DIFFERENCE requires 0")
        else:
            require(-128 <= t.quant.scalar_zero_point <= 127, op,
                    f"tensor {t.name!r} has zero point {t.quant.scalar_zero_point} outside [-128, 127], which "
                    "TFLite Micro refuses")
    s1, s2, so = (float(np.float64(t.quant.scale[0])) for t in (x1, x2, y))
    require(min(s1, s2, so) > 0.0, op, f"scales must be positive, got {s1:.6g}, {s2:.6g} -> {so:.6g}")
    twice_max = 2.0 * max(s1, s2)
    real1, real2 = s1 / twice_max, s2 / twice_max
    real_out = (twice_max * twice_max) / float((1 << (left_shift * 2)) * np.float64(so))
    require(0.0 < real_out < 2.0**31 and np.isfinite(real_out), op,
            f"output rescale factor {real_out:.6g} (twice the larger input scale squared over 2^14 x the output "
            "scale) is beyond TFLite's int32 multiplier: the quantization scales are inconsistent")
    m1, sh1 = quantize_multiplier(real1)
    m2, sh2 = quantize_multiplier(real2)
    mo, sho = quantize_multiplier(real_out)
    return SquaredDifferenceParams(-x1.quant.scalar_zero_point, m1, sh1, -x2.quant.scalar_zero_point, m2, sh2,
                                   left_shift, y.quant.scalar_zero_point, mo, sho)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    require(len(op.inputs) == 2 and all(t is not None for t in op.inputs) and len(op.outputs) == 1, op,
            "takes exactly two inputs and one output")
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    require(y.dtype in ("int8", "int16"), op, f"output {y.name!r} is {y.dtype}; only int8 and int16 are supported")
    for t in (x1, x2):
        require(t.dtype == y.dtype, op, f"input {t.name!r} is {t.dtype} but the output is {y.dtype}")
    squared_difference_params(op)
    if x1.shape == x2.shape:
        return [tuple(x1.shape)]
    return [broadcast_shape(op, x1.shape, x2.shape)]


def scaled_input(x: np.ndarray, offset: int, multiplier: int, shift: int,
                 left_shift: int = LEFT_SHIFT) -> np.ndarray:
    """One input's rescaled value: (x + offset) << left_shift, times its multiplier below one."""
    return multiply_by_quantized_multiplier_smaller_than_one((np.asarray(x, np.int64) + offset) << left_shift,
                                                             multiplier, shift)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = squared_difference_params(op)
    a = scaled_input(inputs[0], p.input1_offset, p.input1_multiplier, p.input1_shift, p.left_shift)
    b = scaled_input(inputs[1], p.input2_offset, p.input2_multiplier, p.input2_shift, p.left_shift)
    diff = a - b
    # The C++ adds the zero point in int32: it wraps when the scaled square is near 2^31.
    scaled = multiply_by_quantized_multiplier(diff * diff, p.output_multiplier, p.output_shift)
    raw = wrap_int32(scaled + p.output_offset)
    lo, hi = dtype_range(op.output.dtype)
    y = np.clip(raw, lo, hi).astype(op.output.dtype)
    return [np.ascontiguousarray(np.broadcast_to(y, op.output.shape))]


OPDEF = register(OpDef(SQUARED_DIFFERENCE, SquaredDifferenceAttrs, infer_shapes, no_macs, binary_input_regions,
                       evaluate, traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
