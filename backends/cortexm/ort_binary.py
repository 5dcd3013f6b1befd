"""The constants of onnxruntime's QLinearAdd and QLinearMul for runtime_c/mcuc_ort.h
(mcuc_ort_add_t, mcuc_ort_mul_t): the float32 ones of the float form (MLAS's formulas,
as mcuc.ir.ops.add / mul evaluate them) and those of the integer form, from
mcuc.ir.ort_numerics' qlinear_add_tables and qlinear_mul_constants. Where those decline
(values too large for the fixed point) the integer fields stay empty and the kernel
computes in float."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuc.ir.numerics import uint8_offset
from mcuc.ir.op import Op
from mcuc.ir.ort_numerics import fma_f32, int_to_f32, qlinear_add_tables, qlinear_mul_constants

_INT8 = np.arange(-128, 128, dtype=np.int64)


def _byte_order(table: np.ndarray) -> np.ndarray:
    """A table indexed by int8 value + 128 reordered for the int8 value's byte (0..127,
    then -128..-1), the index the C reads."""
    return np.roll(table, 128)


@dataclass(frozen=True)
class OrtAdd:
    """mcuc_ort_add_t's values: t1, t2 (int64 arrays in byte order) and frac are None
    where the integer form declines; `exact`: the tables hold their values exactly."""

    ra: np.float32
    rb: np.float32
    fixed: np.float32
    offset: int
    swap: bool
    t1: np.ndarray | None
    t2: np.ndarray | None
    frac: int | None
    exact: bool = False


def ort_add(op: Op) -> OrtAdd:
    """QLinearAdd (MLAS AVX2): y = rne(fma(a, ra, fma(b, rb, fixed))) on the model's own
    values, with a one-element first input folded first (`swap`); the integer form's
    outer input (x1, or x2 with swap) contributes a * its ratio, the inner one
    fma(b, its ratio, fixed)."""
    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    off = uint8_offset(op.attrs)
    sa, sb, sc = (np.float32(t.quant.scale[0]) for t in (x1, x2, y))
    za, zb, zc = (np.float32(t.quant.scalar_zero_point + off) for t in (x1, x2, y))
    ra, rb = np.float32(sa / sc), np.float32(sb / sc)
    fixed = np.float32(zc - fma_f32(ra, za, np.float32(rb * zb)))
    swap = x1.size == 1 and x2.size != 1
    values = int_to_f32(_INT8 + off)
    r_outer, r_inner = (rb, ra) if swap else (ra, rb)
    form = qlinear_add_tables(values, r_outer, fma_f32(values, r_inner, fixed), off)
    if form is None:
        return OrtAdd(ra, rb, fixed, off, swap, None, None, None)
    outer, inner, frac, exact = form
    t1, t2 = (inner, outer) if swap else (outer, inner)
    return OrtAdd(ra, rb, fixed, off, swap, _byte_order(t1), _byte_order(t2), frac, exact)


@dataclass(frozen=True)
class OrtMul:
    """mcuc_ort_mul_t's values; `thresholds` None where the integer form declines."""

    za: int
    zb: int
    ratio: np.float32
    zc: np.float32
    offset: int
    mult: int = 0
    shift: int = 0
    add: int = 0
    frac: int = 0
    thresholds: np.ndarray | None = None


def every_pair(op: Op) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x1, x2, y): the op's own evaluate on all 65536 pairs of int8 inputs, [x1 + 128, x2 + 128]."""
    from mcuc.ir import Tensor, op_def

    grid = Op(op.kind, tuple(Tensor(t.name, (256, 256), "int8", t.quant) for t in op.inputs),
              (Tensor(op.output.name, (256, 256), "int8", op.output.quant),), op.attrs)
    a, b = np.meshgrid(_INT8, _INT8, indexing="ij")
    y = op_def(op.kind).evaluate(grid, [a.astype(np.int8), b.astype(np.int8)])[0]
    return a, b, y.astype(np.int64)


def ort_mul(op: Op) -> OrtMul:
    """QLinearMul (MLAS SSE2): float32(exact product of the centred inputs) * ratio +
    float32(zc), rounded half to even, on the model's own values; the zero points are
    the IR's (the differences are the same). The integer form: floor(d * ratio + zp) + 1
    exactly (qlinear_mul_constants), then threshold_round with thresholds taken from the
    op's own evaluate over all 65536 input pairs, which the form must then reproduce."""
    from mcuc.ir.ops.common import dtype_range
    from mcuc.ir.ort_numerics import qlinear_mul_ceiling, threshold_round

    x1, x2, y = op.inputs[0], op.inputs[1], op.output
    off = uint8_offset(op.attrs)
    sa, sb, sc = (np.float32(t.quant.scale[0]) for t in (x1, x2, y))
    ratio = np.float32(np.float32(sa * sb) / sc)
    za, zb, zy = (t.quant.scalar_zero_point for t in (x1, x2, y))
    floats = OrtMul(za, zb, ratio, np.float32(zy + off), off)
    largest = int(np.max(np.abs(_INT8 - za)) * np.max(np.abs(_INT8 - zb)))
    form = qlinear_mul_constants(ratio, zy, largest)
    if form is None:
        return floats
    lo, hi = dtype_range(y.dtype)
    low, high = max(lo, op.attrs.act_min), min(hi, op.attrs.act_max)
    a, b, want = every_pair(op)
    d = (a - za) * (b - zb)
    # thresholds[j + 128]: the least product whose output is j or more (beyond every
    # product where none is); unused outside [low, high]
    thresholds = np.zeros(256, np.int64)
    for j in range(low, high + 1):
        thresholds[j + 128] = d[want >= j].min(initial=2**17)
    thresholds[low + 128] = -(2**17)
    if not np.array_equal(threshold_round(qlinear_mul_ceiling(d, *form), d, thresholds, low, high), want):
        return floats
    return OrtMul(za, zb, ratio, np.float32(zy + off), off, *form, thresholds)
