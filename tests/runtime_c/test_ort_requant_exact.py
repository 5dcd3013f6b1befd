"""runtime_c/mcuc_ort.h's integer requantization (mcuc_ort_requant_int, and for scales in
[2^-16, 2^8) the signed path mcuc_ort_requant_signed) against onnxruntime's float32
definition (MlasRequantizeOutput: float32(acc) * scale, clamp, cvtps2dq, + zp).

1. Exhaustive: every one of the 2^32 int32 accumulators for each scale of EXHAUSTIVE, in a
   C harness built by the host gcc (-O2 -ffp-contract=off -fno-fast-math) whose reference is
   the float32 arithmetic itself, SSE on x86-64 (cvtdq2ps, mulps, maxps, minps, cvtps2dq:
   the instructions MLAS runs, exact IEEE single precision), a scalar float loop elsewhere.
   The 2^32 are split over the host's cores. The two scales take the two sides of the
   algorithm: 0.0123 the fast path (|acc| up to 20813), its ties and double rounding
   hazards, and saturation beyond; 1.1e-7 (below 2^-23) the fast path up to 2^24 and the
   general path beyond, where float32(acc) itself rounds (about 48 s of one core on the
   development machine, two thirds of the test's time). The signed path is checked in
   the same loop where it applies, checked and bounded: for 0.0123 (bounded with d = 5,
   the most bits dropped), and for 3.05e-5, near its lower edge 2^-16, where
   accumulators up to 2^24 take it (bounded with d = 3).
2. Random (hypothesis): scales of every exponent (subnormal, tiny, huge, exact powers of
   two, 1, 0.5) and zero points, over accumulators near every rounding tie of the output
   range, near the powers of two, near the fast path's limit and random ones; compared with
   mcuc.ir.ort_numerics.requantize_output (float) and requantize_output_integer (numpy).
"""
from __future__ import annotations

import concurrent.futures
import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcuc.ir.ort_numerics import (
    requant_integer_constants, requantize_output, requantize_output_integer, requantize_output_signed,
    SIGNED_MAX_DROP, signed_requant_applies, signed_rounding)
from mcuc.runtime_c import SOURCE_DIR

from tests.ir.test_onnx_numerics import interesting_accumulators, scales, signed_scales
from tests.support.c_library import host_library

# (scale, zero point): one run over all 2^32 accumulators each
# (scale, zero point, d of the bounded form or -1)
EXHAUSTIVE = [(0.0123, 0, 5), (1.1e-7, -7, -1), (3.05e-5, 9, 3)]

_HARNESS = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "mcuc_ort.h"

#define BLOCK 4096
static int32_t want[BLOCK], got[BLOCK], got_signed[BLOCK], got_bounded[BLOCK];

/* argv: scale bits (hex), mult, limit, shift, zp, lo, hi, first block, end block (blocks of
 * BLOCK accumulators counted from 0 as uint32, so block 2^20 - 1 ends at -1), signed (1:
 * mcuc_ort_requant_signed applies and its checked form is compared too), drop (d >= 0:
 * its bounded form with that d is compared on every accumulator its shift holds) */
int main(int argc, char **argv) {
    uint32_t bits, mult, limit, b, first, end;
    int32_t shift, zp, lo, hi, check_signed, rounding, drop, pre, frac, rounding_d;
    unsigned long long bad = 0;
    float scale, flo, fhi;
    if (argc != 12) {
        return 2;
    }
    bits = (uint32_t)strtoul(argv[1], 0, 16);
    mult = (uint32_t)strtoul(argv[2], 0, 10);
    limit = (uint32_t)strtoul(argv[3], 0, 10);
    shift = (int32_t)strtol(argv[4], 0, 10);
    zp = (int32_t)strtol(argv[5], 0, 10);
    lo = (int32_t)strtol(argv[6], 0, 10);
    hi = (int32_t)strtol(argv[7], 0, 10);
    first = (uint32_t)strtoul(argv[8], 0, 10);
    end = (uint32_t)strtoul(argv[9], 0, 10);
    check_signed = (int32_t)strtol(argv[10], 0, 10);
    drop = (int32_t)strtol(argv[11], 0, 10);
    rounding = (1 << 20) + (1 << 6) + (int32_t)((uint32_t)zp << 21);
    pre = shift - 1 - (drop > 0 ? drop : 0);
    frac = 21 - (drop > 0 ? drop : 0);
    rounding_d = (1 << (frac - 1)) + (1 << (frac - 15)) + (int32_t)((uint32_t)zp << frac);
    memcpy(&scale, &bits, sizeof scale);
    flo = (float)(lo - zp);
    fhi = (float)(hi - zp);
    for (b = first; b < end; b++) {
        const uint32_t base = b * BLOCK;
        int j;
#if defined(__SSE2__)
        const __m128 vs = _mm_set1_ps(scale), vlo = _mm_set1_ps(flo), vhi = _mm_set1_ps(fhi);
        const __m128i vzp = _mm_set1_epi32(zp), four = _mm_set1_epi32(4);
        __m128i acc = _mm_add_epi32(_mm_set1_epi32((int32_t)base), _mm_setr_epi32(0, 1, 2, 3));
        for (j = 0; j < BLOCK; j += 4) {
            const __m128 v = _mm_min_ps(_mm_max_ps(_mm_mul_ps(_mm_cvtepi32_ps(acc), vs), vlo), vhi);
            _mm_storeu_si128((__m128i *)(void *)(want + j), _mm_add_epi32(_mm_cvtps_epi32(v), vzp));
            acc = _mm_add_epi32(acc, four);
        }
#else
        for (j = 0; j < BLOCK; j++) {
            float v = (float)(int32_t)(base + (uint32_t)j) * scale;
            v = v < flo ? flo : (v > fhi ? fhi : v);
            want[j] = (int32_t)nearbyintf(v) + zp;
        }
#endif
        for (j = 0; j < BLOCK; j++) {
            got[j] = mcuc_ort_requant_int((int32_t)(base + (uint32_t)j), mult, limit, shift, zp, lo, hi);
        }
        if (check_signed) {
            for (j = 0; j < BLOCK; j++) {
                got_signed[j] = mcuc_ort_requant_signed((int32_t)(base + (uint32_t)j), (int32_t)(mult >> 1), shift - 1,
                                                        21, 1, rounding, zp, lo, hi);
            }
        } else {
            memcpy(got_signed, want, sizeof want);
        }
        for (j = 0; j < BLOCK; j++) {
            const int32_t a = (int32_t)(base + (uint32_t)j);
            const int held = drop >= 0 && (int32_t)((uint32_t)a << pre) >> pre == a && a >= -(1 << 24) &&
                             a <= (1 << 24);
            got_bounded[j] = held ? mcuc_ort_requant_signed(a, (int32_t)(mult >> 1), pre, frac, 0,
                                                            rounding_d, zp, lo, hi)
                                  : want[j];
        }
        if (memcmp(want, got, sizeof want) != 0 || memcmp(want, got_signed, sizeof want) != 0 ||
            memcmp(want, got_bounded, sizeof want) != 0) {
            for (j = 0; j < BLOCK; j++) {
                if ((want[j] != got[j] || want[j] != got_signed[j] || want[j] != got_bounded[j]) && bad++ < 5) {
                    printf("acc %d: float %d, integer %d, signed %d, bounded %d\n", (int32_t)(base + (uint32_t)j),
                           want[j], got[j], got_signed[j], got_bounded[j]);
                }
            }
        }
    }
    printf("mismatches %llu\n", bad);
    return 0;
}
"""

_BLOCKS = 2**20  # of 4096 accumulators


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc is not installed")
    folder = tmp_path_factory.mktemp("ort_requant")
    (folder / "harness.c").write_text(_HARNESS)
    exe = folder / "harness"
    subprocess.run(["gcc", "-O2", "-ffp-contract=off", "-fno-fast-math", "-std=c11", "-Wall", "-Wextra", "-Werror",
                    f"-I{SOURCE_DIR}", str(folder / "harness.c"), "-o", str(exe), "-lm"], check=True)
    return exe


def _constants(scale: float):
    mult, limit, shift = (int(v) for v in requant_integer_constants(np.float32(scale)))
    return mult, limit, shift


@pytest.mark.parametrize("scale,zp,drop", EXHAUSTIVE)
def test_every_int32_accumulator(harness, scale, zp, drop):
    bits = int(np.float32(scale).view(np.uint32))
    mult, limit, shift = _constants(scale)
    check_signed = int(signed_requant_applies(shift, zp))
    assert check_signed == (scale != 1.1e-7)
    workers = max(1, min(os.cpu_count() or 1, 16))
    edges = [_BLOCKS * i // workers for i in range(workers + 1)]

    def run(i: int) -> str:
        args = [str(harness), f"{bits:08x}", str(mult), str(limit), str(shift), str(zp), "-128", "127",
                str(edges[i]), str(edges[i + 1]), str(check_signed), str(drop)]
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        reports = list(pool.map(run, range(workers)))
    assert all(r.strip().endswith("mismatches 0") for r in reports), "".join(reports)


# -- random scales over the accumulators that matter ---------------------------------------

_WRAPPER = r"""
#include "mcuc_ort.h"
void w_requant(const int32_t *acc, int32_t *out, int n, uint32_t mult, uint32_t limit, int32_t shift,
               int32_t zp, int32_t lo, int32_t hi) {
    int i;
    for (i = 0; i < n; i++) out[i] = mcuc_ort_requant_int(acc[i], mult, limit, shift, zp, lo, hi);
}
void w_signed(const int32_t *acc, int32_t *out, int n, int32_t mult7, int32_t pre, int32_t frac, int32_t checked,
              int32_t rounding, int32_t zp, int32_t low, int32_t high) {
    int i;
    for (i = 0; i < n; i++) out[i] = mcuc_ort_requant_signed(acc[i], mult7, pre, frac, checked, rounding, zp, low, high);
}
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    library = host_library(tmp_path_factory, "ort_requant_exact", _WRAPPER)
    library.w_requant.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint32,
                                  ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32]
    library.w_signed.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int] + [ctypes.c_int32] * 8
    return library


@settings(deadline=None, max_examples=300)
@given(scale=scales(), zp=st.integers(-128, 127), seed=st.integers(0, 2**32 - 1))
def test_random_scales(lib, scale, zp, seed):
    scale = np.float32(scale)
    mult, limit, shift = _constants(scale)
    acc = interesting_accumulators(scale, limit, np.random.default_rng(seed))
    acc32 = acc.astype(np.int32)
    out = np.empty(acc.size, np.int32)
    lib.w_requant(acc32.ctypes.data, out.ctypes.data, acc.size, mult, limit, shift, zp, -128, 127)
    with np.errstate(over="ignore"):
        want = requantize_output(acc, scale, zp, -128, 127)
    bad = np.nonzero(out != want)[0]
    assert bad.size == 0, f"scale {scale!r}: acc {acc[bad[:5]].tolist()} gives {out[bad[:5]].tolist()}, " \
                          f"float32 {want[bad[:5]].tolist()}"
    assert np.array_equal(out, requantize_output_integer(acc, mult, limit, shift, zp, -128, 127))


@settings(deadline=None, max_examples=300)
@given(scale=signed_scales(), zp=st.integers(-128, 127), seed=st.integers(0, 2**32 - 1),
       act=st.sampled_from([(-128, 127), (-128, 0), (-20, 100), (5, 5)]), drop=st.integers(-1, SIGNED_MAX_DROP))
def test_random_scales_signed(lib, scale, zp, seed, act, drop):
    """The signed path, checked (drop -1) or bounded with d = drop on the accumulators its
    shift holds, the clamp to an activation's range included, against the float32
    definition and its numpy statement."""
    mult, limit, shift = _constants(np.float32(scale))
    checked = drop < 0
    d = 0 if checked else drop
    pre, frac = shift - 1 - d, 21 - d
    acc = interesting_accumulators(np.float32(scale), limit, np.random.default_rng(seed))
    if not checked:
        bound = min((2**31 - 1) >> pre, 2**24)
        acc = np.concatenate([np.clip(acc, -bound, bound), [-bound, bound]])
    acc32 = acc.astype(np.int32)  # kept alive across the call
    out = np.empty(acc.size, np.int32)
    lib.w_signed(acc32.ctypes.data, out.ctypes.data, acc.size, mult >> 1, pre, frac, int(checked),
                 signed_rounding(zp, frac), zp, *act)
    with np.errstate(over="ignore"):
        want = np.clip(requantize_output(acc, np.float32(scale), zp, -128, 127), *act)
    bad = np.nonzero(out != want)[0]
    assert bad.size == 0, f"scale {scale!r}, d {drop}: acc {acc[bad[:5]].tolist()} gives {out[bad[:5]].tolist()}, " \
                          f"float32 {want[bad[:5]].tolist()}"
    assert np.array_equal(out, requantize_output_signed(acc, mult >> 1, pre, zp, *act, frac=frac, checked=checked))
