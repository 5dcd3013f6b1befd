"""gemmlowp's fixed-point transcendental functions and the 16-bit helpers of TFLite's
nonlinear int8 kernels (SOFTMAX, LOGISTIC, HARD_SWISH), vectorized over numpy arrays.

Each function mirrors one function of gemmlowp's `fixedpoint/fixedpoint.h` (the header
the TFLite Micro reference kernels include) or of TFLite's
`tensorflow/lite/kernels/internal/{common.h,quantization_util.cc,reference/hard_swish.h}`,
in the reference kernels' default build (double rounding, TFLITE_SINGLE_ROUNDING off).

Values are int64 arrays holding int32 (or, for the `*_int16` functions, int16) values, so
products never overflow in numpy. Where the C code adds or negates in the narrow type
(gemmlowp's plain `Add`/`Sub`/`Neg`, int16 assignments), the result is wrapped to that
width exactly as two's-complement C does on every target we generate code for.

A gemmlowp `FixedPoint<int32_t, k>` (Qk.(31-k)) is represented by its raw int32 value;
the functions take the integer-bit count `k` as a plain argument.
"""
from __future__ import annotations

import math

import numpy as np

from .fixedpoint import (
    INT32_MAX,
    INT32_MIN,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

INT16_MIN = -(2**15)
INT16_MAX = 2**15 - 1

# Q0.31 constants of gemmlowp's exp_on_negative_values barrel shifter: exp(-2^e) for
# each bit e of the input's magnitude (fixedpoint.h, GEMMLOWP_EXP_BARREL_SHIFTER).
_EXP_BARREL_SHIFTER: tuple[tuple[int, int], ...] = (
    (-2, 1672461947),  # exp(-1/4)
    (-1, 1302514674),  # exp(-1/2)
    (0, 790015084),    # exp(-1)
    (1, 290630308),    # exp(-2)
    (2, 39332535),     # exp(-4)
    (3, 720401),       # exp(-8)
    (4, 242),          # exp(-16)
)


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 (C's narrowing conversion)."""
    return ((_i64(x) + 2**31) & 0xFFFFFFFF) - 2**31


def wrap_int16(x) -> np.ndarray:
    """Two's-complement wrap of int64 values to int16 (C's narrowing conversion)."""
    return ((_i64(x) + 2**15) & 0xFFFF) - 2**15


def _truncating_div_pot(x: np.ndarray, bits: int) -> np.ndarray:
    """C's `x / (1 << bits)` for signed x: the quotient rounds toward zero."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


# -- multipliers (quantization_util.cc) ---------------------------------------------------

def std_round(x: float) -> int:
    """std::round (TfLiteRound on doubles): ties away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """CalculateInputRadius: the largest |input difference| whose rescaled value still fits
    the fixed-point input format, floor((2^k - 1) * 2^(bits - k) / 2^left_shift)."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * float(1 << (total_signed_bits - input_integer_bits))
                          / float(1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def down_scale_int32_to_int16_multiplier(multiplier: int) -> int:
    """DownScaleInt32ToInt16Multiplier (common.h): a Q31 multiplier rounded to Q15,
    saturating near 2^31."""
    if multiplier >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (multiplier + (1 << 15)) >> 16


# -- 32-bit gemmlowp primitives ------------------------------------------------------------

def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp RoundingHalfSum (int32): (a + b) / 2, rounded half away from zero."""
    total = _i64(a) + _i64(b)
    sign = np.where(total >= 0, 1, -1)
    return _truncating_div_pot(total + sign, 1)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> (int32): a saturating left shift
    for exponent > 0 (values beyond +-(2^(31-exponent) - 1) saturate, so -2^(31-exponent)
    maps to INT32_MIN), a rounding right shift for exponent < 0."""
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def rescale(x, src_integer_bits: int, dst_integer_bits: int) -> np.ndarray:
    """gemmlowp Rescale<dst>(FixedPoint<int32_t, src>): change the integer-bit count."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a) -> np.ndarray:
    """gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl: exp(a) for a Q0.31
    a in [-1/4, 0), by a 4th-order Taylor expansion around -1/8."""
    srdhm = saturating_rounding_doubling_high_mul
    constant_term = 1895147668       # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883    # 1/3 in Q0.31
    x = wrap_int32(_i64(a) + (1 << 28))  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(
        wrap_int32(srdhm(wrap_int32(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return wrap_int32(constant_term + srdhm(constant_term, wrap_int32(x + poly)))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: exp(a) as Q0.31 for a Qk.(31-k) value a <= 0.

    exp of the input modulo 1/4 by the Taylor expansion, then one multiply by exp(-2^e)
    per set bit e of the remainder (the barrel shifter, for e < k), then exp(0) = One."""
    a = _i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap_int32((a & (one_quarter - 1)) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL_SHIFTER:
        if integer_bits > exponent:
            bit = 1 << (fractional_bits + exponent)
            result = np.where((remainder & bit) != 0,
                              saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32 in Qk
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a) for a Q0.31 a in [0, 1), by
    three Newton-Raphson steps on the half denominator in Q2.29."""
    srdhm = saturating_rounding_doubling_high_mul
    half_denominator = rounding_half_sum(a, INT32_MAX)
    constant_48_over_17 = 1515870810        # Q2.29
    constant_neg_32_over_17 = -1010580540   # Q2.29
    one_q2 = 1 << 29
    x = wrap_int32(constant_48_over_17 + srdhm(half_denominator, constant_neg_32_over_17))
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus_half_denominator_times_x = wrap_int32(one_q2 - half_denominator_times_x)
        x = wrap_int32(x + rescale(srdhm(x, one_minus_half_denominator_times_x), 4, 2))
    # ExactMulByPot<-1> turns Q2 into Q1 without touching the raw value; then Q1 -> Q0.
    return rescale(x, 1, 0)


def logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic: 1 / (1 + exp(-a)) as Q0.31 for any Qk.(31-k) value a."""
    a = _i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, wrap_int32(-a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap_int32(-abs_input), integer_bits))
    result_if_negative = wrap_int32(INT32_MAX - result_if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def count_leading_zeros_uint32(x) -> np.ndarray:
    """CountLeadingZeros<uint32_t> (32 for zero) of int32 values read as uint32."""
    u = _i64(x) & 0xFFFFFFFF
    _, bit_length = np.frexp(u.astype(np.float64))  # exact: u < 2^53
    return np.where(u == 0, 32, 32 - bit_length.astype(np.int64))


def get_reciprocal(x, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """GetReciprocal (common.h): for a positive Qk value x, (1 / x as a Q0.31 fraction of
    the next power of two, num_bits_over_unit) with 1/x = fraction * 2^-num_bits_over_unit."""
    headroom_plus_one = count_leading_zeros_uint32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = ((_i64(x) & 0xFFFFFFFF) << np.minimum(headroom_plus_one, 31)) & 0xFFFFFFFF
    shifted_sum_minus_one = wrap_int32(shifted - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


# -- 16-bit helpers of the HARD_SWISH kernel -----------------------------------------------

def saturating_rounding_doubling_high_mul_int16(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul<int16_t> (like ARM SQRDMULH)."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    q = wrap_int16(_truncating_div_pot(ab + nudge, 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, q)


def saturating_doubling_high_mul_int16(a, b) -> np.ndarray:
    """SaturatingDoublingHighMul of reference/hard_swish.h (like ARM SQDMULH): the product
    divided by 2^15 rounding toward zero, not to nearest."""
    a, b = _i64(a), _i64(b)
    q = wrap_int16(_truncating_div_pot(a * b, 15))
    return np.where((a == INT16_MIN) & (b == INT16_MIN), INT16_MAX, q)


def rounding_divide_by_pot_int16(x, exponent: int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT<int16_t> for exponent in [0, 31], including what the
    C does for exponent >= 16: the mask (2^exponent - 1) narrows to int16 -1, so the
    result is +1 for x >= 0 and -1 for x < 0 instead of the rounded quotient."""
    x = _i64(x)
    mask = int(wrap_int16((1 << exponent) - 1))
    remainder = wrap_int16(x & mask)
    threshold = wrap_int16((mask >> 1) + (x < 0))
    return wrap_int16((x >> exponent) + (remainder > threshold))


def saturating_left_shift_int16(value, amount: int) -> np.ndarray:
    """SaturatingLeftShift of reference/hard_swish.h: value * 2^amount clamped to int16."""
    return np.clip(_i64(value) << amount, INT16_MIN, INT16_MAX)
