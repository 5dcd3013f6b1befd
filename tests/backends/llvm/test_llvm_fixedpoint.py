"""The LLVM backend's fixed-point helpers equal mcuc.ir.fixedpoint bit for bit: over
edge values exhaustively (every pair) and over the whole int32 range with hypothesis."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mcuc.backends.llvm.testing import FixedPointKernels
from mcuc.ir import fixedpoint as ref

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
EDGES = [INT32_MIN, INT32_MIN + 1, -(2**30) - 1, -(2**30), -65536, -255, -128, -3, -2, -1, 0, 1, 2, 3,
         127, 255, 65535, 2**30 - 1, 2**30, 2**30 + 1, INT32_MAX - 1, INT32_MAX]
# Multipliers as QuantizeMultiplier makes them ([2^30, 2^31)) plus the other edges.
MULTIPLIERS = [0, 1, 2**30, 2**30 + 1, 1518500250, INT32_MAX - 1, INT32_MAX, INT32_MIN, -1]
int32s = st.integers(INT32_MIN, INT32_MAX)


@pytest.fixture(scope="module")
def kernels() -> FixedPointKernels:
    return FixedPointKernels()


def test_high_mul_on_every_pair_of_edges(kernels):
    a, b = np.array(list(itertools.product(EDGES, EDGES))).T
    got = kernels("saturating_rounding_doubling_high_mul", a, b)
    np.testing.assert_array_equal(got, ref.saturating_rounding_doubling_high_mul(a, b))


def test_high_mul_saturates_the_one_overflow(kernels):
    assert kernels("saturating_rounding_doubling_high_mul", [INT32_MIN], [INT32_MIN])[0] == INT32_MAX


def test_rounding_divide_on_edges_and_every_exponent(kernels):
    x, e = np.array(list(itertools.product(EDGES, range(32)))).T
    got = kernels("rounding_divide_by_pot", x, e)
    np.testing.assert_array_equal(got, ref.rounding_divide_by_pot(x, e))


def test_rounding_divide_ties_round_away_from_zero(kernels):
    got = kernels("rounding_divide_by_pot", [5, -5, 3, -3, 6, -6], [1, 1, 1, 1, 2, 2])
    assert got.tolist() == [3, -3, 2, -2, 2, -2]


def test_multiply_by_quantized_multiplier_on_edges_and_all_shifts(kernels):
    x, m, s = np.array(list(itertools.product(EDGES, MULTIPLIERS, range(-31, 31)))).T
    got = kernels("multiply_by_quantized_multiplier", x, m, s)
    np.testing.assert_array_equal(got, ref.multiply_by_quantized_multiplier(x, m, s))


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(int32s, int32s, st.integers(0, 31), st.integers(-31, 30)), min_size=1, max_size=64))
def test_fixed_point_equals_numpy_over_int32(kernels, cases):
    a, b, e, s = (np.array(v, np.int64) for v in zip(*cases))
    np.testing.assert_array_equal(kernels("saturating_rounding_doubling_high_mul", a, b),
                                  ref.saturating_rounding_doubling_high_mul(a, b))
    np.testing.assert_array_equal(kernels("rounding_divide_by_pot", a, e), ref.rounding_divide_by_pot(a, e))
    np.testing.assert_array_equal(kernels("multiply_by_quantized_multiplier", a, b, s),
                                  ref.multiply_by_quantized_multiplier(a, b, s))


def test_a_wrong_rounding_would_be_caught(kernels):
    """The comparison can fail: truncating instead of rounding differs on these inputs."""
    x, e = np.array([5, -5, 7]), np.array([1, 1, 2])
    assert not np.array_equal(kernels("rounding_divide_by_pot", x, e), x >> e)
