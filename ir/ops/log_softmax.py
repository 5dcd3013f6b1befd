"""LOG_SOFTMAX over the last axis, int8 in and out (TFLM's log_softmax.cc,
reference_ops::LogSoftmaxQuantized).

Prepare (PreprocessLogSoftmaxScalingExp with beta 1, 5 integer bits):
- (input_multiplier, input_left_shift) = QuantizeMultiplierGreaterThanOne(min(input_scale
  x 2^26, 2^31 - 1)) (the product must exceed 1);
- (reverse_divisor, reverse_shift <= 0) = QuantizeMultiplierSmallerThanOneExp(
  2^(31 - input_left_shift) / input_multiplier);
- diff_min = -CalculateInputRadius(5, input_left_shift);
- the output quantization is fixed: scale exactly 16/256, zero point 127.
Rows of 4096 elements or more are refused: their Q12.19 sum can reach 2^31, where the
reference's int32 add overflows.
Eval, per row of the last axis, with d = x - max(row):
- sum (Q12.19, wrapping int32 adds) of Rescale<12>(exp_on_negative_values(Q5 d')) over
  d >= diff_min, where d' = MultiplyByQuantizedMultiplier(d, input_multiplier,
  input_left_shift) is d in Q5.26;
- L = log_x_for_x_greater_than_or_equal_to_1<5>(sum) (TFLite's common.h, Q5.26);
- adjusted = max(diff_min - 1, MultiplyByQuantizedMultiplier(L + INT32_MIN,
  reverse_divisor, reverse_shift));
- y = clamp(RoundingDivideByPOT(d' - L, 22) + 127) where d > adjusted, else -128.

Rows run along the last axis, which patch regions never split: the op is POSITIONAL and
may run inside patch stages (like SOFTMAX). Backends tabulate what depends on one
difference (d' and the sum's share, 256 entries each, from this module) and run the
row's sum, L and the output stage (log_x in C: runtime_c/mcuc_log_softmax.h; in LLVM:
backends/llvm/kernels/log_softmax.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul as srdhm,
)
from ..fixedpoint_exp import (
    calculate_input_radius,
    count_leading_zeros_uint32,
    exp_on_negative_values,
    one_over_one_plus_x_for_x_in_0_1,
    rescale,
    rounding_half_sum,
    wrap_int32,
)
from ..op import Op
from ..region import Region
from . import OpDef, Trait, register
from .common import int8_unary_shapes, no_macs, require
from .kinds import LOG_SOFTMAX

INPUT_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12
OUTPUT_SCALE = 16.0 / 256
OUTPUT_ZERO_POINT = 127
# gemmlowp constants of log_x_for_x_greater_than_or_equal_to_1_impl (Q0.31).
LOG_2, SQRT_SQRT_HALF, SQRT_HALF = 1488522236, 1805811301, 1518500250
ALPHA_N, ALPHA_D, ALPHA_I, ALPHA_F = 117049297, 127690142, 1057819769, 638450708


@dataclass(frozen=True)
class LogSoftmaxAttrs:
    pass


@dataclass(frozen=True)
class LogSoftmaxParams:
    input_multiplier: int
    input_left_shift: int
    reverse_divisor: int
    reverse_shift: int  # <= 0: MultiplyByQuantizedMultiplier's shift
    diff_min: int


def log_softmax_params(op: Op) -> LogSoftmaxParams:
    x, y = op.input, op.output
    require(float(np.float32(y.quant.scale[0])) == OUTPUT_SCALE and y.quant.scalar_zero_point == OUTPUT_ZERO_POINT,
            op, f"output scale {float(y.quant.scale[0]):g} and zero point {y.quant.scalar_zero_point}: tflite-micro "
                "requires scale 16/256 and zero point 127")
    real = min(float(np.float32(x.quant.scale[0])) * float(1 << (31 - INPUT_INTEGER_BITS)), float(2**31 - 1))
    require(real > 1.0, op, f"input scale {float(x.quant.scale[0]):g} is not above 2^-26 "
                            "(QuantizeMultiplierGreaterThanOne needs input scale x 2^26 > 1)")
    multiplier, left_shift = quantize_multiplier(real)
    reverse_real = float(1 << (31 - left_shift)) / float(multiplier)
    divisor, reverse_shift = quantize_multiplier(reverse_real)
    diff_min = -calculate_input_radius(INPUT_INTEGER_BITS, left_shift)
    return LogSoftmaxParams(multiplier, left_shift, divisor, reverse_shift, diff_min)


def _sat_shl(x, exponent) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOTParam for exponents >= 0 (array or scalar)."""
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    threshold = (np.int64(1) << (31 - exponent)) - 1
    shifted = wrap_int32(x << exponent)
    return np.where(exponent == 0, x, np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN,
                                                                                 shifted)))


def _sat_add(a, b) -> np.ndarray:
    return np.clip(np.asarray(a, np.int64) + np.asarray(b, np.int64), INT32_MIN, INT32_MAX)


def log_x_ge_1(x, input_integer_bits: int = ACCUMULATION_INTEGER_BITS,
               output_integer_bits: int = INPUT_INTEGER_BITS) -> np.ndarray:
    """TFLite's log_x_for_x_greater_than_or_equal_to_1_impl<out, in> (common.h) on raw
    int32 values of a Q<in> x >= 1: log(x) as raw Q<out>."""
    accum_bits = output_integer_bits + 1
    z_a = np.asarray(x, np.int64)
    shifted_quarter = rescale(1 << 29, 0, accum_bits)
    ha = count_leading_zeros_uint32(z_a)
    r_a_tmp = _sat_shl(z_a, ha - 1)
    r_a = _sat_shl(srdhm(r_a_tmp, SQRT_HALF), 1)
    z_a_adj = _sat_add(_sat_shl(input_integer_bits - ha, 31 - accum_bits), shifted_quarter)
    z_b = srdhm(z_a, SQRT_HALF)
    hb = count_leading_zeros_uint32(z_b) - 1
    r_b = _sat_shl(z_a, hb)
    z_b_adj = _sat_add(_sat_shl(input_integer_bits - hb, 31 - accum_bits), -shifted_quarter)
    r = np.minimum(r_a, r_b)
    z_adj = np.maximum(z_a_adj, z_b_adj)
    p = rounding_half_sum(r, SQRT_SQRT_HALF)
    q = wrap_int32(r - SQRT_SQRT_HALF)
    q = wrap_int32(q + q)
    common_sq = srdhm(q, q)
    num = wrap_int32(srdhm(q, r) + srdhm(srdhm(q, common_sq), ALPHA_N))
    denom_minus_one = wrap_int32(srdhm(p, wrap_int32(wrap_int32(ALPHA_I + q) + srdhm(ALPHA_D, common_sq)))
                                 + srdhm(ALPHA_F, q))
    recip = one_over_one_plus_x_for_x_in_0_1(denom_minus_one)
    num_scaled = rescale(num, 0, accum_bits)
    total = wrap_int32(srdhm(z_adj, LOG_2) + srdhm(num_scaled, recip))
    return rescale(total, accum_bits, output_integer_bits)


def difference_tables(op: Op) -> tuple[np.ndarray, np.ndarray]:
    """For d = 0, -1, ..., -255 (index -d): d in Q5.26 (d') and its share of the sum
    (Rescale<12> of exp(d'), 0 below diff_min), both int32."""
    p = log_softmax_params(op)
    d = -np.arange(256, dtype=np.int64)
    q5 = wrap_int32(multiply_by_quantized_multiplier(d, p.input_multiplier, p.input_left_shift))
    inside = d >= p.diff_min
    shares = np.where(inside, rescale(exp_on_negative_values(np.where(inside, q5, 0), INPUT_INTEGER_BITS), 0,
                                      ACCUMULATION_INTEGER_BITS), 0)
    return q5.astype(np.int32), np.asarray(shares).astype(np.int32)


def infer_shapes(op: Op) -> list[tuple[int, ...]]:
    shapes = int8_unary_shapes(op)
    require(not op.input.is_constant, op, f"input {op.input.name!r} is a constant; mcuc compiles ops on computed "
                                          "values")
    require(len(op.input.shape) >= 1, op, "needs an input of rank 1 or more")
    require(op.input.shape[-1] < 1 << ACCUMULATION_INTEGER_BITS, op,
            f"rows of {op.input.shape[-1]} elements: the Q12.19 sum of exps could overflow int32 in tflite-micro "
            f"(undefined behaviour there), so mcuc takes at most {(1 << ACCUMULATION_INTEGER_BITS) - 1}")
    log_softmax_params(op)
    return shapes


def channel_rows(op: Op, out: Region) -> list[Region | None]:
    start = out.start[:-1] + (0,)
    stop = out.stop[:-1] + (op.input.shape[-1],)
    return [Region(start, stop)]


def evaluate(op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
    p = log_softmax_params(op)
    q5, shares = difference_tables(op)
    x = np.asarray(inputs[0], np.int64)
    depth = x.shape[-1]
    rows = x.reshape(-1, depth)
    d = rows.max(axis=1, keepdims=True) - rows  # index -diff, in [0, 255]
    total = wrap_int32(np.sum(shares.astype(np.int64)[d], axis=1, keepdims=True))
    log_sum = log_x_ge_1(total)
    adjusted = np.maximum(p.diff_min - 1, multiply_by_quantized_multiplier(wrap_int32(log_sum + INT32_MIN),
                                                                           p.reverse_divisor, p.reverse_shift))
    shifted = rounding_divide_by_pot(wrap_int32(q5.astype(np.int64)[d] - log_sum),
                                     31 - INPUT_INTEGER_BITS - 4) + 127
    y = np.where(-d > adjusted, np.clip(shifted, -128, 127), -128)
    return [y.astype(np.int8).reshape(op.output.shape)]


OPDEF = register(OpDef(LOG_SOFTMAX, LogSoftmaxAttrs, infer_shapes, no_macs, channel_rows, evaluate,
                       traits={Trait.POSITIONAL, Trait.PATCHABLE}))
