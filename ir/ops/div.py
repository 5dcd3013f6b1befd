"""DIV of two int8 tensors with broadcasting, as tflite-micro computes it (kernels/div.cc
CalculateOpDataDiv, reference_ops::Div / BroadcastDivSlow for int8).

- Prepare: the output multiplier and shift quantize s1 / (s2 * s_out), the double
  quotient of the float32 scales (what the pinned tflite-micro computes: a float32
  quotient, as later sources write it, differs from it at exact ties); the fused
  activation gives the clamp.
- Eval, per element: v1 = x1 - zp1, v2 = x2 - zp2; a negative v2 negates both; 1/|v2| is
  gemmlowp's GetReciprocal (a Q0.31 fraction and its power-of-two exponent, -1..7); v1 is
  shifted up by its leading sign bits h, high-multiplied by the reciprocal, and the
  quotient rescaled by the output multiplier and a right shift of h + exponent - shift,
  offset and clamped.
- That right shift reaches 32 (a small nonzero dividend, a large divisor) unless the
  output shift is at least 7, and turns into a left shift past 22: tflite-micro's
  rounding divide is then undefined (x86 masks the shift count, Arm does not: different
  bytes), so mcuc refuses layers with an output shift outside 7..22 (s1 / (s2 * s_out) in
  [2^6, 2^22)). A divisor equal to its zero point (a real 0) is defined in practice: the
  reciprocal of 0 shifts a zero (-1 as a fraction, exponent -1), the same on every
  machine, and mcuc computes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import (quantize_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
                          wrap_int32)
from ..fixedpoint_exp import count_leading_zeros_uint32, get_reciprocal
from ..op import Op
from . import OpDef, register
from .add import binary_infer_shapes, binary_input_regions
from .common import require
from .kinds import DIV

OUTPUT_SHIFTS = (7, 22)  # where every right shift of the kernel stays within 0..31


@dataclass(frozen=True)
class DivAttrs:
    act_min: int = -128
    act_max: int = 127


@dataclass(frozen=True)
class DivParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int


def div_params(op: Op) -> DivParams:
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    require(y.dtype == "int8", op, f"output {y.name!r} is {y.dtype}; tflite-micro's quantized DIV is int8 only")
    f = np.float32
    real = float(f(x1.quant.scalar_scale)) / (float(f(x2.quant.scalar_scale)) * float(f(y.quant.scalar_scale)))
    multiplier, shift = quantize_multiplier(real)
    lo, hi = OUTPUT_SHIFTS
    require(lo <= shift <= hi, op,
            f"s1 / (s2 * s_out) = {real:g}: outside [2^{lo - 1}, 2^{hi - 1}) tflite-micro's int8 kernel shifts some "
            "quotients by 32 bits or more, or to the left (undefined: x86 and Arm give different bytes); choose an "
            "output scale that puts it inside")
    return DivParams(-x1.quant.scalar_zero_point, -x2.quant.scalar_zero_point, y.quant.scalar_zero_point,
                     multiplier, shift)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    shapes = binary_infer_shapes(op)
    div_params(op)
    return shapes


def macs(op: Op) -> int:
    return 0


def leading_sign_bits(v) -> np.ndarray:
    """CountLeadingSignBits<int32> (31 for zero)."""
    v = np.asarray(v, np.int64)
    return np.where(v >= 0, count_leading_zeros_uint32(v) - 1, count_leading_zeros_uint32(2 * (-v) - 1))


def divisor_tables(op: Op) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per int8 divisor value (index x2 + 128): (negate the dividend, reciprocal, its
    exponent), what depends on the divisor alone."""
    p = div_params(op)
    v2 = np.arange(-128, 128, dtype=np.int64) + p.input2_offset
    reciprocal, exponent = get_reciprocal(np.abs(v2), 31)
    return v2 < 0, np.asarray(reciprocal, np.int64), np.asarray(exponent, np.int64)


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = div_params(op)
    negate, reciprocal, exponent = divisor_tables(op)
    x1, x2 = np.broadcast_arrays(np.asarray(inputs[0], np.int64), np.asarray(inputs[1], np.int64))
    at = x2 + 128
    v1 = x1 + p.input1_offset
    v1 = np.where(negate[at], -v1, v1)
    headroom = leading_sign_bits(v1)
    unscaled = saturating_rounding_doubling_high_mul(wrap_int32(v1 << headroom), reciprocal[at])
    right = headroom + exponent[at] - p.output_shift
    y = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(unscaled, p.output_multiplier), right)
    y = np.clip(y + p.output_offset, op.attrs.act_min, op.attrs.act_max)
    return [np.broadcast_to(y, op.output.shape).astype(np.int8)]


OPDEF = register(OpDef(DIV, DivAttrs, infer_shapes, macs, binary_input_regions, evaluate))
