"""runtime_c/mcuc_ort.h's QLinearAdd and QLinearMul (mcuc_ort_add_one, mcuc_ort_mul_one) in
their integer form against the ops' float32 definition (mcuc.ir.ops.add / mul
evaluate_onnxruntime): every one of the 65536 pairs of int8 inputs, for fixed and random
(hypothesis) scales, zero points, activation clamps, uint8 offsets and ADD's folded
one-element first input. The constants are the backend's (backends/cortexm/ort_binary.py).
Also checked: the integer form answers almost every pair itself (the float form only
within 2^-13 of a half-integer), and mcuc.ir.ort_numerics' numpy statement agrees."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcuc.backends.cortexm.ort_binary import ort_add, ort_mul
from mcuc.ir import Op, Quantization, Tensor, op_def
from mcuc.ir.numerics import OrtInteger
from mcuc.ir.ops.add import AddAttrs
from mcuc.ir.ops.mul import MulAttrs
from mcuc.ir.ort_numerics import fixed_point_round, qlinear_mul_ceiling, threshold_round

from tests.support.c_library import host_library

_WRAPPERS = r"""
#include "mcuc_ort.h"
/* out[(x1 + 128) * 256 + x2 + 128] for every pair of int8 inputs */
void w_add(int8_t *out, float ra, float rb, float fixed, int32_t offset, int32_t act_min, int32_t act_max,
           int32_t swap, const int32_t *t1, const int32_t *t2, int32_t frac, int32_t exact) {
    const mcuc_ort_add_t p = {ra, rb, fixed, offset, -128, 127, act_min, act_max, swap, t1, t2, frac, exact};
    int x1, x2;
    for (x1 = -128; x1 < 128; x1++) {
        for (x2 = -128; x2 < 128; x2++) {
            out[(x1 + 128) * 256 + x2 + 128] = (int8_t)mcuc_ort_add_one(x1, x2, &p);
        }
    }
}
void w_mul(int8_t *out, int32_t za, int32_t zb, float ratio, float zc, int32_t offset, int32_t act_min,
           int32_t act_max, const int32_t *thresholds, int32_t mult, int32_t shift, int32_t add, int32_t frac) {
    const mcuc_ort_mul_t p = {za, zb, ratio, zc, offset, -128, 127, act_min, act_max, thresholds, mult, shift, add,
                              frac};
    int x1, x2;
    for (x1 = -128; x1 < 128; x1++) {
        for (x2 = -128; x2 < 128; x2++) {
            out[(x1 + 128) * 256 + x2 + 128] = (int8_t)mcuc_ort_mul_one(x1, x2, &p);
        }
    }
}
"""

_P = ctypes.c_void_p
_I, _F = ctypes.c_int32, ctypes.c_float


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    library = host_library(tmp_path_factory, "ort_binary", _WRAPPERS)
    library.w_add.argtypes = [_P, _F, _F, _F, _I, _I, _I, _I, _P, _P, _I, _I]
    library.w_mul.argtypes = [_P, _I, _I, _F, _F, _I, _I, _I, _P, _I, _I, _I, _I]
    return library


_ALL = np.arange(-128, 128, dtype=np.int64)


def _op(kind: str, scales, zps, act: tuple[int, int], uint8: bool, scalar_first: bool = False) -> Op:
    shape1 = (1,) if scalar_first else (256,)
    x1 = Tensor("x1", shape1, "int8", Quantization(scales[0], zps[0]))
    x2 = Tensor("x2", (256,), "int8", Quantization(scales[1], zps[1]))
    y = Tensor("y", (256,), "int8", Quantization(scales[2], zps[2]))
    attrs = (AddAttrs if kind == "ADD" else MulAttrs)(act[0], act[1], numerics=OrtInteger(uint8=uint8))
    return Op(kind, (x1, x2), (y,), attrs)


def _definition(op: Op) -> np.ndarray:
    """The op's float32 definition on every pair, [x1 + 128, x2 + 128]."""
    evaluate = op_def(op.kind).evaluate
    if op.inputs[0].size == 1:
        rows = [evaluate(op, [np.array([a], np.int8), _ALL.astype(np.int8)])[0] for a in _ALL]
        return np.stack(rows).astype(np.int64)
    grid = Op(op.kind, tuple(Tensor(t.name, (256, 256), "int8", t.quant) for t in op.inputs),
              (Tensor("y", (256, 256), "int8", op.output.quant),), op.attrs)
    a, b = np.meshgrid(_ALL, _ALL, indexing="ij")
    return evaluate(grid, [a.astype(np.int8), b.astype(np.int8)])[0].astype(np.int64)


def _check_add(lib, op: Op) -> float:
    """C == definition on all pairs; returns the share of pairs the integer form answers."""
    f = ort_add(op)
    out = np.empty(65536, np.int8)
    t1, t2 = ((None, None) if f.t1 is None else
              (np.ascontiguousarray(f.t1, np.int32), np.ascontiguousarray(f.t2, np.int32)))
    lib.w_add(out.ctypes.data, f.ra, f.rb, f.fixed, f.offset, op.attrs.act_min, op.attrs.act_max, int(f.swap),
              None if t1 is None else t1.ctypes.data, None if t2 is None else t2.ctypes.data, f.frac or 0, int(f.exact))
    want = _definition(op)
    got = out.reshape(256, 256).astype(np.int64)
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"(x1, x2) = {(bad[:5] - 128).tolist()}: {got[tuple(bad[:5].T)]} != {want[tuple(bad[:5].T)]}"
    if f.t1 is None:
        return 0.0
    # the numpy statement: the same integers where it answers
    table1, table2 = np.roll(f.t1, -128), np.roll(f.t2, -128)  # back to int8 value + 128
    y, answers = fixed_point_round(table1[:, None] + table2[None, :], f.frac, f.exact)
    y = np.clip(np.clip(y, -128, 127), op.attrs.act_min, op.attrs.act_max)
    assert np.array_equal(y[answers], want[answers])
    return float(answers.mean())


def _check_mul(lib, op: Op) -> float:
    f = ort_mul(op)
    out = np.empty(65536, np.int8)
    thresholds = None if f.thresholds is None else np.ascontiguousarray(f.thresholds, np.int32)
    lib.w_mul(out.ctypes.data, f.za, f.zb, f.ratio, f.zc, f.offset, op.attrs.act_min, op.attrs.act_max,
              None if thresholds is None else thresholds.ctypes.data, f.mult, f.shift, f.add, f.frac)
    want = _definition(op)
    got = out.reshape(256, 256).astype(np.int64)
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"(x1, x2) = {(bad[:5] - 128).tolist()}: {got[tuple(bad[:5].T)]} != {want[tuple(bad[:5].T)]}"
    if f.thresholds is None:
        return 0.0
    d = (_ALL[:, None] - f.za) * (_ALL[None, :] - f.zb)
    low, high = max(-128, op.attrs.act_min), min(127, op.attrs.act_max)
    k1 = qlinear_mul_ceiling(d, f.mult, f.shift, f.add, f.frac)
    assert np.array_equal(threshold_round(k1, d, f.thresholds, low, high), want)
    return 1.0


# (scales of x1, x2, y; zero points; activation clamp; uint8)
TYPICAL = [((0.0235, 0.0412, 0.049), (-3, 12, -7), (-128, 127), False),
           ((0.1, 0.1, 0.2), (0, 0, 0), (-128, 127), False),           # exact ties: ra = rb = 0.5
           ((0.0235, 0.0412, 0.031), (-128, -100, -128), (-128, 127), True),
           ((0.0235, 0.0412, 0.031), (-5, 7, -128), (-128, 127), False),  # ReLU range below
           ((0.5, 0.25, 1.0 / 64), (0, 0, 0), (-128, 127), False)]      # saturation nearly everywhere


@pytest.mark.parametrize("scales,zps,act,uint8", TYPICAL)
def test_add_every_input_pair(lib, scales, zps, act, uint8):
    assert _check_add(lib, _op("ADD", scales, zps, act, uint8)) > 0.99
    assert _check_add(lib, _op("ADD", scales, zps, act, uint8, scalar_first=True)) > 0.99


@pytest.mark.parametrize("scales,zps,act,uint8", TYPICAL)
def test_mul_every_input_pair(lib, scales, zps, act, uint8):
    assert _check_mul(lib, _op("MUL", scales, zps, act, uint8)) > 0.99


def test_forms_that_decline_stay_exact(lib):
    """Ratios too large for the fixed point (the float form throughout)."""
    op = _op("ADD", (100.0, 1.0, 1e-4), (0, 0, 0), (-128, 127), False)
    assert ort_add(op).t1 is None
    _check_add(lib, op)
    op = _op("MUL", (100.0, 100.0, 1e-3), (0, 0, 0), (-128, 127), False)
    assert ort_mul(op).thresholds is None
    _check_mul(lib, op)


_scale = st.floats(-12.0, 3.0).map(lambda e: float(np.float32(2.0 ** e)))


@settings(deadline=None, max_examples=80)
@given(kind=st.sampled_from(["ADD", "MUL"]), scales=st.tuples(_scale, _scale, _scale),
       zps=st.tuples(*[st.integers(-128, 127)] * 3), relu=st.booleans(), uint8=st.booleans(),
       scalar_first=st.booleans())
def test_random_ops_every_input_pair(lib, kind, scales, zps, relu, uint8, scalar_first):
    act = (zps[2], 127) if relu else (-128, 127)
    if kind == "ADD":
        _check_add(lib, _op(kind, scales, zps, act, uint8, scalar_first))
    else:
        _check_mul(lib, _op(kind, scales, zps, act, uint8))
