"""ir/ort_numerics.py's float32 primitives against exact rational arithmetic: the fused
multiply-add rounds once (ties to even), the requantization and QuantizeLinear round
half to even and clamp like MLAS."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from mcuc.ir.ort_numerics import fma_f32, quantize_linear, requantize_output


def _nearest_f32(value: Fraction) -> np.float32:
    """The float32 nearest to an exact rational, ties to the even mantissa."""
    guess = np.float32(float(value))
    candidates = [np.nextafter(guess, np.float32(-np.inf)), guess, np.nextafter(guess, np.float32(np.inf))]
    return min(candidates, key=lambda c: (abs(Fraction(float(c)) - value), int(np.array(c).view(np.int32)) & 1))


@pytest.mark.parametrize("kind", ["random", "cancelling", "ties"])
def test_fma_rounds_once(kind):
    rng = np.random.default_rng({"random": 0, "cancelling": 1, "ties": 2}[kind])
    for _ in range(1500):
        a, b, c = (np.float32(v) for v in rng.normal(0, 1, 3) * (10.0 ** rng.integers(-3, 4, 3)))
        if kind == "cancelling":  # the product nearly cancels c: its low bits decide
            c = np.float32(-(np.float64(a) * np.float64(b)))
        elif kind == "ties":  # a * b is exactly half an ulp of c (or a quarter)
            a, b, c = np.float32(1.0), np.float32(2.0 ** -25 * int(rng.integers(1, 3))), np.float32(rng.integers(1, 1000))
        expected = _nearest_f32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))
        assert np.float32(fma_f32(a, b, c)) == expected, (a, b, c)


def test_requantize_output_rounds_half_to_even_and_clamps():
    acc = np.array([1, 3, 5, -1, -3, 1000, -1000], np.int64)
    # scale 0.5: exact halves 0.5, 1.5, 2.5, -0.5, -1.5 -> 0, 2, 2, -0, -2; then +zp 3 and the clamp
    y = requantize_output(acc, np.float32(0.5), 3, -128, 127)
    assert y.tolist() == [3, 5, 5, 3, 1, 127, -128]


def test_quantize_linear_divides_then_rounds_half_to_even():
    scale = np.float32(0.1)
    x = np.array([0.25, 0.35, -0.25, 12.75, 1e9, -1e9, np.nan], np.float32)
    quotient = x / scale  # float32 division, as MLAS
    expected = np.clip(np.rint(np.clip(quotient, -128 - 2, 127 - 2)) + 2, -128, 127)
    expected[-1] = -128  # NaN: cvtps2dq's integer indefinite, saturated
    assert quantize_linear(x, scale, 2, -128, 127).tolist() == expected.astype(np.int64).tolist()


# -- requantize_output_integer: MlasRequantizeOutput in integer arithmetic ------------------
#
# The numpy statement of runtime_c/mcuc_ort.h's mcuc_ort_requant_int against the float32
# definition: exhaustively over every accumulator of a window for a few scales, and over
# random scales (hypothesis) at the accumulators where a rounding can go wrong.
# tests/runtime_c/test_ort_requant_exact.py holds the C equal to both.

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mcuc.ir.ort_numerics import (  # noqa: E402
    SIGNED_MAX_DROP, requant_integer_constants, requantize_output_integer, requantize_output_signed, signed_drop,
    signed_requant_applies)

# (scale, zero point, window): every |acc| < window; below 2^-23 the fast path covers all
# of |acc| < 2^24, the general path the rest
WINDOW_SCALES = [(1.0, 0, 2**22), (0.5, 3, 2**22), (0.0123, -128, 2**22), (7.9e-5, 17, 2**22), (1.1e-7, -7, 2**24)]
SPECIAL_SCALES = [1e-40, 1e-45, 1e-30, 1e30, 3.4e38, 0.0, 1.0, 0.5, 2.0**-24, 2.0**-16, 2.0**-32, 2.0**-33, 2.0**8,
                  2.0**22, 255.99998, 1.1e-7, 0.0123]


@pytest.mark.parametrize("scale,zp,window", WINDOW_SCALES)
def test_requantize_integer_equals_float_over_a_window(scale, zp, window):
    scale = np.float32(scale)
    constants = requant_integer_constants(scale)
    chunk = 2**18
    for start in range(-window, window, chunk):
        acc = np.arange(start, start + chunk, dtype=np.int64)
        got = requantize_output_integer(acc, *constants, zp, -128, 127)
        want = requantize_output(acc, scale, zp, -128, 127)
        assert np.array_equal(got, want), acc[np.nonzero(got != want)[0][:5]]


def interesting_accumulators(scale: np.float32, limit: int, rng: np.random.Generator) -> np.ndarray:
    """int32 accumulators where a rounding can go wrong: the neighbours of every tie
    (j + 1/2) / scale of the 8-bit output range, of the powers of two, of the fast path's
    limit, the ends of int32, and random ones of every magnitude."""
    s = float(scale)
    parts = [np.arange(-2, 3)]
    if s > 0:
        ties = (np.arange(-300, 300) + 0.5) / s
        ties = ties[np.abs(ties) < 2.0**31]
        parts.append(np.round(ties)[:, None] + np.arange(-2, 3))
    powers = 2.0 ** np.arange(32)
    parts += [powers[:, None] + np.arange(-2, 3), -powers[:, None] + np.arange(-2, 3)]
    parts += [limit + np.arange(-2, 3), -limit + np.arange(-2, 3), [-(2**31), 2**31 - 1]]
    parts.append((rng.integers(1, 2**31, 400) >> rng.integers(0, 31, 400)) * rng.choice([-1, 1], 400))
    acc = np.concatenate([np.ravel(p) for p in parts]).astype(np.float64)
    return np.clip(acc, -(2**31), 2**31 - 1).astype(np.int64)


def scales():
    """float32 scales: the special ones, full significands of every exponent (subnormal
    to huge), few significant bits (exact ties), any float32 >= 0."""
    full = st.builds(lambda m, e: np.float32(np.ldexp(float(m), e)), st.integers(2**23, 2**24 - 1),
                     st.integers(-180, 100))
    few_bits = st.builds(lambda m, e: np.float32(np.ldexp(float(m), e)), st.integers(1, 255), st.integers(-40, 10))
    anything = st.floats(min_value=0.0, max_value=float(np.finfo(np.float32).max), width=32, allow_subnormal=True)
    return st.one_of(st.sampled_from(SPECIAL_SCALES).map(np.float32), full, few_bits, anything.map(np.float32))


@settings(deadline=None, max_examples=300)
@given(scale=scales(), zp=st.integers(-128, 127), seed=st.integers(0, 2**32 - 1))
def test_requantize_integer_equals_float_for_random_scales(scale, zp, seed):
    constants = requant_integer_constants(scale)
    acc = interesting_accumulators(scale, int(constants[1]), np.random.default_rng(seed))
    with np.errstate(over="ignore"):
        want = requantize_output(acc, scale, zp, -128, 127)
    got = requantize_output_integer(acc, *constants, zp, -128, 127)
    assert np.array_equal(got, want), (scale, acc[np.nonzero(got != want)[0][:5]])


# -- requantize_output_signed: the signed fast path (mcuc_ort_requant_signed) ----------------
#
# Scales in [2^-16, 2^9) only (signed_requant_applies); 2^-16 and 511.99997 are its edges.
SIGNED_WINDOW_SCALES = [(1.0, 0), (0.5, 3), (0.0123, -128), (7.9e-5, 17), (2.0**-16, -7), (3.0517578e-05, 5),
                        (200.0, 100), (511.99997, -3)]


@pytest.mark.parametrize("scale,zp", SIGNED_WINDOW_SCALES)
def test_requantize_signed_equals_float_over_a_window(scale, zp):
    scale = np.float32(scale)
    mult, _, shift = requant_integer_constants(scale)
    assert signed_requant_applies(shift, zp)
    chunk = 2**18
    for start in range(-(2**24), 2**24, chunk):
        acc = np.arange(start, start + chunk, dtype=np.int64)
        got = requantize_output_signed(acc, mult >> 1, shift - 1, zp, -128, 127)
        want = requantize_output(acc, scale, zp, -128, 127)
        assert np.array_equal(got, want), acc[np.nonzero(got != want)[0][:5]]


def signed_scales():
    """float32 scales in the signed path's range [2^-16, 2^9): full significands of every
    exponent there, few significant bits (exact ties), and its edges."""
    full = st.builds(lambda m, e: np.float32(np.ldexp(float(m), e)), st.integers(2**23, 2**24 - 1),
                     st.integers(-16 - 23, 8 - 23))
    few_bits = st.builds(lambda m, e: np.float32(np.ldexp(float(m), e)), st.integers(1, 255), st.integers(-16, 0))
    edges = st.sampled_from([2.0**-16, 511.99997, 256.0, 1.0, 0.5, 2.0**7, 0.0123]).map(np.float32)
    return st.one_of(edges, full, few_bits)


@settings(deadline=None, max_examples=300)
@given(scale=signed_scales(), zp=st.integers(-128, 127), seed=st.integers(0, 2**32 - 1),
       act=st.sampled_from([(-128, 127), (-128, 0), (-20, 100), (5, 5)]))
def test_requantize_signed_equals_float_for_random_scales(scale, zp, seed, act):
    mult, limit, shift = requant_integer_constants(scale)
    assert signed_requant_applies(shift, zp)
    acc = interesting_accumulators(scale, int(limit), np.random.default_rng(seed))
    with np.errstate(over="ignore"):
        want = np.clip(requantize_output(acc, scale, zp, -128, 127), *act)
    got = requantize_output_signed(acc, mult >> 1, shift - 1, zp, *act)
    assert np.array_equal(got, want), (scale, acc[np.nonzero(got != want)[0][:5]])


@pytest.mark.parametrize("scale,zp", SIGNED_WINDOW_SCALES)
@pytest.mark.parametrize("drop", [1, SIGNED_MAX_DROP])
def test_requantize_signed_bounded_over_its_whole_range(scale, zp, drop):
    """The bounded form (shift unchecked, d bits dropped) over every accumulator its shift
    holds (at most 2^24 in magnitude)."""
    scale = np.float32(scale)
    mult, _, shift = requant_integer_constants(scale)
    pre = int(shift) - 1 - drop
    bound = min((2**31 - 1) >> pre, 2**24)
    chunk = 2**18
    for start in range(-bound, bound + 1, chunk):
        acc = np.arange(start, min(start + chunk, bound + 1), dtype=np.int64)
        got = requantize_output_signed(acc, mult >> 1, pre, zp, -128, 127, frac=21 - drop, checked=False)
        want = requantize_output(acc, scale, zp, -128, 127)
        assert np.array_equal(got, want), acc[np.nonzero(got != want)[0][:5]]


def test_signed_drop_picks_the_least_that_holds():
    shift = np.array([17, 20, 24])
    assert signed_drop(shift, [0, 0, 0]) == 0
    assert signed_drop(shift, [2**15 - 1, 2**12 - 1, 2**8 - 1]) == 0
    assert signed_drop(shift, [2**14, 2**11, 2**8]) == 1          # 2^8 << 23 overflows, << 22 does not
    assert signed_drop(shift, [2**14, 2**11, 2**13 - 1]) == 5
    assert signed_drop(shift, [2**14, 2**11, 2**13]) is None       # needs d = 6
    assert signed_drop([8, 8], [2**24 - 1, 1]) == 0
    assert signed_drop([8, 8], [2**24, 1]) == 1
    assert signed_drop([8, 8], [2**24 + 1, 1]) is None              # beyond float32's exact integers
    with pytest.raises(ValueError, match="overflows"):
        requantize_output_signed(np.array([2**15]), 2**30, 16, 0, -128, 127, checked=False)


def test_signed_path_range():
    """Outside [2^-16, 2^9), or with a zero point beyond 255, the signed path does not apply."""
    for scale in (2.0**-16 * 0.99, 512.0, 0.0, 1e-40, 2.0**-20):
        assert not signed_requant_applies(requant_integer_constants(np.float32(scale))[2], 0), scale
    assert not signed_requant_applies(requant_integer_constants(np.float32(0.01))[2], 256)
    assert signed_requant_applies(requant_integer_constants(np.float32([0.01, 2.0**-16, 511.99997]))[2], -255)


def test_requantize_integer_per_channel_and_its_limits():
    rng = np.random.default_rng(9)
    scales = np.float32([0.0123, 1.1e-7, 0.0, 300.0, 2.0**-20, 1e-40])
    acc = rng.integers(-(2**31), 2**31, (4000, scales.size))
    acc[:2000] >>= rng.integers(0, 31, (2000, scales.size))
    constants = requant_integer_constants(scales)
    with np.errstate(over="ignore"):
        want = requantize_output(acc, scales, -5, -128, 127)
    assert np.array_equal(requantize_output_integer(acc, *constants, -5, -128, 127), want)
    for bad in (-1.0, np.inf, np.nan):
        with pytest.raises(ValueError):
            requant_integer_constants(np.float32(bad))
    with pytest.raises(ValueError, match="within 255"):
        requantize_output_integer(acc, *constants, 0, -32768, 32767)
