"""TANH, int8 in, int8 out, with TFLite Micro's fixed-point algorithm (kernels/tanh.cc
CalculateArithmeticOpData, reference/integer_ops/tanh.h, gemmlowp's tanh); int16 in and
out with its interpolated sigmoid table (sigmoid_int16.py).

- Prepare: double(input_scale) * 2^27 is split by frexp into a Q31 multiplier
  (TfLiteRound) and a left shift; input_range_radius = CalculateInputRadius(4, shift).
  The output quantization is not checked and not used: the kernel always writes
  tanh * 128 (scale 1/128, zero point 0), whatever the tensor says, and so does mcuc.
- Eval, per element: d = x - input_zero_point; d <= -radius gives -128, d >= radius
  gives 127; otherwise d is rescaled to Q4.27 (MultiplyByQuantizedMultiplier), gemmlowp
  tanh gives Q0.31, RoundingDivideByPOT by 24 bits, clamped to int8.
- gemmlowp tanh(a): 0 for a == 0; otherwise with n = -|a| (Q4), t = -tanh(n) =
  one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n as Q5: the same raw
  bits, ExactMulByPot<1>)), and the result is -t for a < 0, t for a > 0.
"""
from __future__ import annotations

import numpy as np

from ..fixedpoint import multiply_by_quantized_multiplier, rounding_divide_by_pot, saturating_rounding_doubling_high_mul
from ..fixedpoint_exp import (
    calculate_input_radius,
    exp_on_negative_values,
    rescale,
    rounding_half_sum,
    std_round,
    wrap_int32,
)
from ..op import Op
from . import OpDef, Trait, register
from .common import int8_unary_shapes, no_macs, require, same_region
from .kinds import TANH
from .logistic import LogisticParams
from .sigmoid_int16 import evaluate_int16, sigmoid16_params

INPUT_INTEGER_BITS = 4
OUTPUT_SCALE_BITS = 7
INT32_MAX = 2**31 - 1


def tanh_params(op: Op) -> LogisticParams:
    """TFLM's int8 Prepare (the same constants as LOGISTIC's, by the same computation)."""
    input_scale = float(np.float32(op.input.quant.scalar_scale))
    fraction, left_shift = np.frexp(input_scale * float(1 << (31 - INPUT_INTEGER_BITS)))
    multiplier = std_round(float(fraction) * (1 << 31))
    # CalculateInputRadius computes 1 << left_shift: undefined for negative shifts
    # (input scale below 2^-28) and past 62.
    require(0 <= int(left_shift) <= 62, op,
            f"input scale {input_scale:g} is outside what TFLite's int8 tanh handles "
            f"(2^-28 .. 2^35): requantize the input")
    radius = calculate_input_radius(INPUT_INTEGER_BITS, int(left_shift), 31)
    return LogisticParams(op.input.quant.scalar_zero_point, radius, multiplier, int(left_shift))


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp one_minus_x_over_one_plus_x_for_x_in_0_1: (1 - a) / (1 + a) for a Q0.31 a
    in [0, 1): three Newton-Raphson steps on the half denominator in Q2.29, minus one."""
    srdhm = saturating_rounding_doubling_high_mul
    half_denominator = rounding_half_sum(a, INT32_MAX)
    one_q2 = 1 << 29
    x = wrap_int32(1515870810 + srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    for _ in range(3):
        one_minus_half_denominator_times_x = wrap_int32(one_q2 - srdhm(half_denominator, x))
        x = wrap_int32(x + rescale(srdhm(x, one_minus_half_denominator_times_x), 4, 2))
    return rescale(wrap_int32(x - one_q2), 2, 0)


def gemmlowp_tanh(a, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh of a Qk.(31-k) value, as Q0.31."""
    a = np.asarray(a, dtype=np.int64)
    negative = a < 0
    n = np.where(negative, a, wrap_int32(-a))
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    shapes = int8_unary_shapes(op, ("int8", "int16"))
    if op.input.dtype == "int16":
        sigmoid16_params(op)
    else:
        tanh_params(op)
    return shapes


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    if op.input.dtype == "int16":
        return [evaluate_int16(op, inputs[0])]
    p = tanh_params(op)
    d = inputs[0].astype(np.int64) - p.input_zero_point
    inside = (d > -p.input_range_radius) & (d < p.input_range_radius)
    input_in_q4 = multiply_by_quantized_multiplier(np.where(inside, d, 0), p.input_multiplier, p.input_left_shift)
    output_in_q0 = gemmlowp_tanh(input_in_q4, INPUT_INTEGER_BITS)
    scaled = np.clip(rounding_divide_by_pot(output_in_q0, 31 - OUTPUT_SCALE_BITS), -128, 127)
    y = np.where(inside, scaled, np.where(d <= -p.input_range_radius, -128, 127))
    return [y.astype(np.int8)]


OPDEF = register(OpDef(TANH, None, infer_shapes, no_macs, same_region, evaluate,
                        traits={Trait.ELEMENTWISE, Trait.POSITIONAL, Trait.PATCHABLE}))
