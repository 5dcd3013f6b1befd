"""runtime_c/mcuc_fixedpoint.h against mcuc.ir.fixedpoint: the C helpers compiled on
the host into a shared library, called through ctypes over edge values and hypothesis
int32 inputs. Equal bytes, not "close" (DESIGN.md, Numerics)."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcuc.ir import fixedpoint as fp

from tests.support.c_library import host_library

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

_WRAPPERS = r"""
#include "mcuc_fixedpoint.h"
int32_t w_srdhm(int32_t a, int32_t b) { return mcuc_srdhm(a, b); }
int32_t w_rdbpot(int32_t x, int32_t e) { return mcuc_rdbpot(x, e); }
int32_t w_mbqm(int32_t x, int32_t m, int32_t s) { return mcuc_mbqm(x, m, s); }
int32_t w_mbqm_small(int32_t x, int32_t m, int32_t s) { return mcuc_mbqm_small(x, m, s); }
int32_t w_requant_fast(int32_t x, int32_t m, int32_t r, int32_t e) { return mcuc_requant_fast(x, m, r, e); }
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    library = host_library(tmp_path_factory, "fixedpoint", _WRAPPERS, "c99")
    for name, nargs in [("w_srdhm", 2), ("w_rdbpot", 2), ("w_mbqm", 3), ("w_mbqm_small", 3),
                        ("w_requant_fast", 4)]:
        f = getattr(library, name)
        f.argtypes = [ctypes.c_int32] * nargs
        f.restype = ctypes.c_int32
    return library


def _wrap(v: int) -> int:
    return int(fp._wrap_int32(np.int64(v)))


EDGES = [INT32_MIN, INT32_MIN + 1, -(2**30) - 1, -(2**30), -65536, -256, -2, -1, 0, 1, 2, 255,
         65535, 2**30 - 1, 2**30, INT32_MAX - 1, INT32_MAX]
MULTIPLIERS = [0, 1, 2**30, 2**30 + 1, 1518500250, 2**31 - 2, INT32_MAX, -1, INT32_MIN]


def test_srdhm_edges(lib):
    for a in EDGES + MULTIPLIERS:
        for b in EDGES + MULTIPLIERS:
            assert lib.w_srdhm(a, b) == int(fp.saturating_rounding_doubling_high_mul(a, b)), (a, b)


def test_rdbpot_edges(lib):
    for x in EDGES:
        for e in range(0, 32):
            assert lib.w_rdbpot(x, e) == int(fp.rounding_divide_by_pot(x, e)), (x, e)


def test_mbqm_edges(lib):
    for x in EDGES:
        for m in MULTIPLIERS[:7]:
            for s in range(-31, 31):
                want = int(fp.multiply_by_quantized_multiplier(x, m, s))
                assert lib.w_mbqm(x, m, s) == _wrap(want), (x, m, s)


@settings(deadline=None, max_examples=300)
@given(x=st.integers(INT32_MIN, INT32_MAX), m=st.integers(INT32_MIN, INT32_MAX),
       s=st.integers(-31, 30))
def test_mbqm_random(lib, x, m, s):
    assert lib.w_srdhm(x, m) == int(fp.saturating_rounding_doubling_high_mul(x, m))
    assert lib.w_mbqm(x, m, s) == _wrap(int(fp.multiply_by_quantized_multiplier(x, m, s)))
    if s <= 0:
        assert lib.w_mbqm_small(x, m, s) == int(fp.multiply_by_quantized_multiplier_smaller_than_one(x, m, s))


@settings(deadline=None, max_examples=300)
@given(x=st.integers(-(2**30) + 1, 2**30 - 1), m=st.integers(1, INT32_MAX), e=st.integers(1, 31))
def test_fast_requant_equals_reference_in_its_proven_domain(lib, x, m, e):
    """The kernels' fast path is only chosen when |x| < 2^30, m > 0 and the right shift
    is >= 1; there it must equal the reference double rounding exactly."""
    want = int(fp.multiply_by_quantized_multiplier(x, m, -e))
    assert lib.w_requant_fast(x, m, 1 << (e - 1), e) == want


def test_fast_requant_ties(lib):
    """Exact ties of both roundings, where a wrong nudge shows first."""
    for m in (2**30, 2**30 + 2**29, INT32_MAX):
        for e in (1, 2, 7, 31):
            for x in (-(2**29), -3, -2, -1, 1, 2, 3, 2**29, 12345, -12345):
                want = int(fp.multiply_by_quantized_multiplier(x, m, -e))
                assert lib.w_requant_fast(x, m, 1 << (e - 1), e) == want, (x, m, e)


# -- runtime_c/mcuc_ort.h: the float pieces of onnxruntime's rule ------------------------

_ORT_WRAPPERS = r"""
#include "mcuc_ort.h"
void w_fmaf(const float *a, const float *b, const float *c, float *out, int n) {
    int i;
    for (i = 0; i < n; i++) out[i] = mcuc_fmaf(a[i], b[i], c[i]);
}
void w_rne(const float *v, int32_t *out, int n) {
    int i;
    for (i = 0; i < n; i++) out[i] = mcuc_rne_f32(v[i]);
}
void w_requant(const int32_t *acc, const uint32_t *mult, const uint32_t *limit, const int32_t *shift, int32_t *out,
               int n, int32_t zp) {
    int i;
    for (i = 0; i < n; i++) out[i] = mcuc_ort_requant_int(acc[i], mult[i], limit[i], shift[i], zp, -128, 127);
}
"""


@pytest.fixture(scope="module")
def ort_lib(tmp_path_factory):
    return host_library(tmp_path_factory, "ort", _ORT_WRAPPERS, "c11")


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def _hard_floats(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 values of every magnitude and many with few significant bits (ties)."""
    mantissas = rng.integers(-(2**24), 2**24, n)
    exps = rng.integers(-30, 20, n)
    few = rng.integers(-64, 64, n) * 2.0 ** rng.integers(-8, 8, n)
    return np.where(rng.random(n) < 0.5, np.ldexp(mantissas.astype(np.float64), exps - 24), few).astype(np.float32)


def test_fmaf_is_one_rounding(ort_lib):
    from mcuc.ir.ort_numerics import fma_f32

    rng = np.random.default_rng(5)
    n = 200_000
    a, b, c = (_hard_floats(rng, n) for _ in range(3))
    # c close to -a*b: cancellation, the case a double-rounded fmaf gets wrong
    c[: n // 2] = (-(a[: n // 2].astype(np.float64) * b[: n // 2]) * (1 + rng.normal(0, 1e-7, n // 2))).astype(np.float32)
    out = np.empty(n, np.float32)
    ort_lib.w_fmaf(_ptr(a), _ptr(b), _ptr(c), _ptr(out), ctypes.c_int(n))
    want = fma_f32(a, b, c)
    assert np.array_equal(out.view(np.uint32), want.view(np.uint32))
    # and the naive product-then-sum differs somewhere (the test can tell them apart)
    assert not np.array_equal((a * b + c).view(np.uint32), want.view(np.uint32))


def test_rne_and_requant(ort_lib):
    from mcuc.ir.ort_numerics import requant_integer_constants, requantize_output

    rng = np.random.default_rng(6)
    v = np.concatenate([np.arange(-600, 601, dtype=np.float32) / 2, _hard_floats(rng, 50_000),
                        np.float32([0.0, -0.0, 0.49999997, -0.49999997, 1.5, 2.5, -2.5, 8388607.5, 2.0**30])])
    v = v[np.abs(v) < 2.0**31]
    out = np.empty(v.size, np.int32)
    ort_lib.w_rne(_ptr(v), _ptr(out), ctypes.c_int(v.size))
    assert np.array_equal(out, np.rint(v).astype(np.int64))
    acc = rng.integers(-(2**31), 2**31, 50_000, dtype=np.int64).astype(np.int32)
    acc[:1000] = rng.integers(-3000, 3000, 1000)
    scale = (2.0 ** rng.uniform(-24, 0, acc.size)).astype(np.float32)
    scale[:1000] = np.float32(0.5)  # exact ties
    y = np.empty(acc.size, np.int32)
    mult, limit, shift = requant_integer_constants(scale)
    ort_lib.w_requant(_ptr(acc), _ptr(mult.astype(np.uint32)), _ptr(limit.astype(np.uint32)),
                      _ptr(shift.astype(np.int32)), _ptr(y), ctypes.c_int(acc.size), ctypes.c_int32(3))
    assert np.array_equal(y, requantize_output(acc, scale, 3, -128, 127))
