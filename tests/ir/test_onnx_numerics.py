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
