"""runtime_c/mcuc_fixedpoint.h against mcuc.ir.fixedpoint: the C helpers compiled on
the host into a shared library, called through ctypes over edge values and hypothesis
int32 inputs. Equal bytes, not "close" (DESIGN.md, Numerics)."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcuc.ir import fixedpoint as fp
from mcuc.runtime_c import SOURCE_DIR

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
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    d = tmp_path_factory.mktemp("fixedpoint")
    (d / "w.c").write_text(_WRAPPERS)
    so = d / "libw.so"
    subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    f"-I{SOURCE_DIR}", str(d / "w.c"), "-o", str(so)], check=True)
    library = ctypes.CDLL(str(so))
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
