"""mcuc.ir.fixedpoint against slow, obviously-correct models of the C semantics, and the
rounding rule against the pinned tflite-micro oracle.

The models below use Python integers and exact fractions, stated the way the math reads
(round half up, round half away from zero, two's-complement wrap), not the bit tricks
of gemmlowp that mcuc.ir.fixedpoint mirrors; equality over edge values and the whole
int32 range is the evidence that the vectorized int64 code is the C code.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcuc.ir import fixedpoint as fp
from mcuc.ir.fixedpoint import INT32_MAX, INT32_MIN
from mcuc.oracle import TFLiteOracle
from tests.support.tflite_builder import ModelBuilder

int32s = st.integers(INT32_MIN, INT32_MAX)
shifts = st.integers(-31, 30)


# -- the slow models ---------------------------------------------------------------------

def wrap32(v: int) -> int:
    """C's conversion of an integer to int32 (two's complement)."""
    return (v + 2**31) % 2**32 - 2**31


def round_half_up(q: Fraction) -> int:
    return math.floor(q + Fraction(1, 2))


def round_half_away(q: Fraction) -> int:
    return round_half_up(q) if q >= 0 else -round_half_up(-q)


def srdhm_model(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul: a*b/2^31 rounded half up; the only value
    that does not fit (INT32_MIN * INT32_MIN) saturates."""
    return min(round_half_up(Fraction(a * b, 2**31)), INT32_MAX)


def rdbpot_model(x: int, exponent: int) -> int:
    """RoundingDivideByPOT: x/2^exponent rounded half away from zero."""
    return round_half_away(Fraction(x, 2**exponent))


def mbqm_model(x: int, multiplier: int, shift: int) -> int:
    """Double-rounding MultiplyByQuantizedMultiplier: a left shift (wrapping like the C
    int32 multiply), the high multiply, then a rounding right shift."""
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot_model(srdhm_model(wrap32(x * 2**left), multiplier), right)


def single_rounding_model(x: int, multiplier: int, shift: int) -> int:
    """The TFLITE_SINGLE_ROUNDING variant: x*multiplier*2^(shift-31), one round half up."""
    return round_half_up(Fraction(x * multiplier, 2**31) * Fraction(2) ** shift)


def quantize_multiplier_model(real: float) -> tuple[int, int]:
    """QuantizeMultiplier by exact search: q in [2^30, 2^31) with real ~ q * 2^(shift-31),
    q = round-half-away(real * 2^(31 - shift)); shift < -31 flushes to (0, 0)."""
    if real == 0.0:
        return 0, 0
    exact = Fraction(real)
    magnitude = abs(exact)
    shift = 0
    while magnitude >= 1:
        magnitude /= 2
        shift += 1
    while magnitude < Fraction(1, 2):
        magnitude *= 2
        shift -= 1
    q = round_half_away(magnitude * 2**31)
    if q == 2**31:
        q, shift = 2**30, shift + 1
    if shift < -31:
        return 0, 0
    return (q if exact > 0 else -q), shift


def one(f, *args) -> int:
    return int(np.asarray(f(*args)).item())


# -- edge values -------------------------------------------------------------------------

EDGE_X = [INT32_MIN, INT32_MIN + 1, -(2**30) - 1, -(2**30), -(2**30) + 1, -65537, -255, -2, -1, 0, 1, 2,
          255, 65537, 2**30 - 1, 2**30, 2**30 + 1, INT32_MAX - 1, INT32_MAX]
EDGE_MULTIPLIERS = [0, 1, 2**30 - 1, 2**30, 2**30 + 1, 1518500250, 2**31 - 2, INT32_MAX]


def test_srdhm_on_edges_including_negative_ties():
    a, b = np.meshgrid(EDGE_X, EDGE_X + [INT32_MIN], indexing="ij")
    got = fp.saturating_rounding_doubling_high_mul(a, b)
    want = np.vectorize(srdhm_model, otypes=[np.int64])(a, b)
    np.testing.assert_array_equal(got, want)
    # The saturating case and a negative tie (-0.5 rounds up to 0, not away to -1).
    assert one(fp.saturating_rounding_doubling_high_mul, INT32_MIN, INT32_MIN) == INT32_MAX
    assert one(fp.saturating_rounding_doubling_high_mul, -(2**30), 1) == 0
    assert one(fp.saturating_rounding_doubling_high_mul, 2**30, 1) == 1


def test_rounding_divide_by_pot_on_edges():
    x, e = np.meshgrid(EDGE_X, np.arange(0, 32), indexing="ij")
    got = fp.rounding_divide_by_pot(x, e)
    want = np.vectorize(rdbpot_model, otypes=[np.int64])(x, e)
    np.testing.assert_array_equal(got, want)


def test_multiply_by_quantized_multiplier_on_edges_and_every_shift():
    x, m, s = np.meshgrid(EDGE_X, EDGE_MULTIPLIERS, np.arange(-31, 31), indexing="ij")
    got = fp.multiply_by_quantized_multiplier(x, m, s)
    want = np.vectorize(mbqm_model, otypes=[np.int64])(x, m, s)
    np.testing.assert_array_equal(got, want)


@settings(deadline=None, max_examples=200)
@given(a=int32s, b=int32s)
def test_srdhm_whole_range(a, b):
    assert one(fp.saturating_rounding_doubling_high_mul, a, b) == srdhm_model(a, b)


@settings(deadline=None, max_examples=200)
@given(x=int32s, e=st.integers(0, 31))
def test_rounding_divide_by_pot_whole_range(x, e):
    assert one(fp.rounding_divide_by_pot, x, e) == rdbpot_model(x, e)


@settings(deadline=None, max_examples=300)
@given(x=int32s, m=st.integers(0, INT32_MAX), s=shifts)
def test_multiply_by_quantized_multiplier_whole_range(x, m, s):
    assert one(fp.multiply_by_quantized_multiplier, x, m, s) == mbqm_model(x, m, s)


@settings(deadline=None, max_examples=100)
@given(x=int32s, m=st.integers(0, INT32_MAX), s=st.integers(-31, 0))
def test_smaller_than_one_variant_equals_general_form(x, m, s):
    assert one(fp.multiply_by_quantized_multiplier_smaller_than_one, x, m, s) == mbqm_model(x, m, s)


@settings(deadline=None, max_examples=100)
@given(x=int32s, m=st.integers(0, INT32_MAX), s=st.integers(0, 30))
def test_greater_than_one_variant_is_the_unshifted_high_mul(x, m, s):
    assert one(fp.multiply_by_quantized_multiplier_greater_than_one, x, m, s) == srdhm_model(wrap32(x << s), m)


def test_wrap_int32():
    values = [INT32_MIN - 1, INT32_MIN, -1, 0, INT32_MAX, INT32_MAX + 1, 2**40 + 5, -(2**40) - 5]
    assert [one(fp.wrap_int32, v) for v in values] == [wrap32(v) for v in values]


# -- quantize_multiplier -----------------------------------------------------------------

EDGE_SCALES = [
    0.0, 1.0, 0.5, 0.25, 2.0, 3.0, 0.75, 1e-3, 0.1, 0.9999999, 1.0000001, 123.456, 2.0**30, 2.0**40,
    2.0**-31, 2.0**-32, 2.0**-33, 2.0**-32 * 0.75, 2.0**-32 * 0.4999,
    1.0 - 2.0**-33,   # rounds up to 2^31: renormalized to 2^30 with shift + 1
    1.0 - 2.0**-31,   # the largest fraction that stays below 2^31
    float(np.float32(0.0039215687)), float(np.float32(1 / 3)), -0.75, -1e-3,
]


@pytest.mark.parametrize("real", EDGE_SCALES)
def test_quantize_multiplier_edge_scales(real):
    assert fp.quantize_multiplier(real) == quantize_multiplier_model(real)


def test_quantize_multiplier_renormalizes_and_flushes():
    assert fp.quantize_multiplier(1.0 - 2.0**-33) == (2**30, 1)
    assert fp.quantize_multiplier(2.0**-33) == (0, 0)
    # The double-rounding build does not clamp large shifts (single rounding would give 30).
    assert fp.quantize_multiplier(2.0**40) == (2**30, 41)


@settings(deadline=None, max_examples=200)
@given(real=st.floats(min_value=2.0**-40, max_value=2.0**35, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_any_scale(real):
    q, shift = fp.quantize_multiplier(real)
    assert (q, shift) == quantize_multiplier_model(real)
    if q:
        assert 2**30 <= q < 2**31 and shift >= -31


# -- which rounding the oracle uses --------------------------------------------------------

def _one_by_one_conv(output_scale: float, bias: int) -> bytes:
    """y = requantize(x + bias): a 1x1 conv with input, weight and bias scales 1, so the
    accumulator is exactly the input plus the bias and the multiplier is 1/output_scale."""
    mb = ModelBuilder()
    x = mb.tensor("x", (1, 16, 16, 1), scale=1.0, zero_point=0)
    w = mb.tensor("w", (1, 1, 1, 1), scale=[1.0], zero_point=[0], data=np.ones((1, 1, 1, 1), np.int8))
    b = mb.tensor("b", (1,), "int32", scale=[1.0], zero_point=[0], data=np.array([bias], np.int32))
    y = mb.tensor("y", (1, 16, 16, 1), scale=output_scale, zero_point=0)
    mb.op("CONV_2D", [x, w, b], [y])
    return mb.build([x], [y])


@pytest.mark.parametrize("output_scale,bias", [(32.99034118652344, 402), (41.8263053894043, -4444),
                                               (90.96399688720703, -758)])
def test_oracle_uses_double_rounding(output_scale, bias):
    """Models where the two rounding rules disagree on several inputs: the oracle
    matches the double-rounding rule everywhere and the single-rounding one nowhere
    near as well (this is the experiment that settled ir/fixedpoint.py)."""
    multiplier, shift = fp.quantize_multiplier(1.0 / float(np.float32(output_scale)))
    inputs = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16, 1)
    acc = [int(v) + bias for v in inputs.ravel()]
    double = np.clip([mbqm_model(a, multiplier, shift) for a in acc], -128, 127)
    single = np.clip([single_rounding_model(a, multiplier, shift) for a in acc], -128, 127)
    assert np.count_nonzero(double != single) >= 3, "the case must separate the two rules"
    got = TFLiteOracle(_one_by_one_conv(output_scale, bias))([inputs])[0].ravel().astype(np.int64)
    np.testing.assert_array_equal(got, double)
    np.testing.assert_array_equal(got, np.clip(fp.multiply_by_quantized_multiplier(acc, multiplier, shift), -128, 127))
    assert not np.array_equal(got, single)
