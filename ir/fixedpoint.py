"""Fixed-point arithmetic of TFLite's integer kernels, vectorized over numpy arrays.

This is the one Python implementation (DESIGN.md, Numerics); runtime_c/ and the LLVM
backend carry the same functions and property tests hold the three equal over the
whole int32 range. All functions take and return int64 arrays holding int32 values so
intermediate products never overflow in numpy.

Rounding rule, settled empirically against the pinned tflite-micro package: it is built
*without* TFLITE_SINGLE_ROUNDING, so MultiplyByQuantizedMultiplier rounds twice
(gemmlowp's SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT). 1x1 CONV_2D
models whose outputs differ between the two rules (e.g. in/weight scale 1, output scale
32.99034, bias 402: 8 of 256 inputs differ) match the double-rounding results byte for
byte and not the single-rounding ones (tests/ir/test_fixedpoint.py keeps that check).
The same build flag means QuantizeMultiplier does not clamp shifts above 30.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 range (C's conversion on every
    target we generate code for)."""
    return ((_i64(x) + 2**31) & 0xFFFFFFFF) - 2**31


_wrap_int32 = wrap_int32  # the name other modules and tests first used


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul: floor(a * b / 2^31 + 1/2), saturating
    the one overflowing case a == b == INT32_MIN to INT32_MAX.

    Ties round up (toward +infinity), not away from zero: the negative nudge
    1 - 2^30 followed by C's truncating division sends -0.5 to 0."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    total = ab + nudge
    # C integer division truncates toward zero; numpy's // floors.
    q = np.where(total >= 0, total >> 31, -((-total) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent, ties away from zero."""
    x, exponent = _i64(x), _i64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier (double rounding, the reference kernels'
    default build): x * multiplier * 2^shift with multiplier a Q31 fraction.

    A positive shift scales x up before the high multiply; the product wraps to
    int32 as the C code does (in-range models never hit this).
    """
    x, multiplier, shift = _i64(x), _i64(multiplier), _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    scaled = _wrap_int32(x << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, multiplier), right)


def multiply_by_quantized_multiplier_smaller_than_one(x, multiplier, shift) -> np.ndarray:
    """The variant for shift <= 0 used by ADD's output stage: same value as above for
    those shifts; kept as a name so op modules read like the kernels they mirror."""
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -_i64(shift))


def multiply_by_quantized_multiplier_greater_than_one(x, multiplier, left_shift) -> np.ndarray:
    """ADD/SUB input stage: (x << left_shift) then the high multiply, no right shift."""
    return saturating_rounding_doubling_high_mul(_wrap_int32(_i64(x) << _i64(left_shift)), multiplier)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = multiplier * 2^(shift - 31), multiplier in
    [2^30, 2^31) as a Q31 fraction (negative for negative `real`), shift >= -31.
    `real` must be a Python float (a C double): callers widen float32 scales first, as
    the reference kernels do. Multipliers below 2^-32 flush to (0, 0). Shifts above 30
    stay as they are: only the single-rounding build clamps them, and the pinned
    tflite-micro is a double-rounding build (see the module docstring)."""
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    q = _round_half_away(fraction * (1 << 31))
    if q == (1 << 31):
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q), int(shift)


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: like quantize_multiplier for real < 1,
    returning a non-positive left shift."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real} must be in (0, 1)")
    q, shift = quantize_multiplier(real)
    return q, shift


def _round_half_away(x: float) -> int:
    """std::round: ties away from zero (Python's round() is half-to-even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Vectorized std::round for float arrays."""
    return np.where(x >= 0, np.floor(x + 0.5), -np.floor(-x + 0.5))


def requantize_per_channel(acc, multipliers, shifts, zero_point: int, act_min: int, act_max: int) -> np.ndarray:
    """The int8 output stage of conv/depthwise/FC: scale, add zero point, clamp.

    `multipliers` and `shifts` broadcast along the last (channel) axis of `acc`.
    """
    y = multiply_by_quantized_multiplier(acc, multipliers, shifts) + zero_point
    return np.clip(y, act_min, act_max)
