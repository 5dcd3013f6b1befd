"""SOFTMAX (int8 in; int8 or int16 out; int16 in and out): TFLM's fixed-point algorithms,
mirroring mcuc.ir.ops.softmax and mcuc.ir.ops.softmax_int16.

What depends on one input value is tabulated at compile time with the reference's own
numpy functions: for every difference from the row maximum (0 .. -255) the Q0.31 exp,
its Rescale<12> share of the sum, and whether the difference is inside diff_min. What
depends on a whole row (the sum and its fixed-point reciprocal, gemmlowp's
one_over_one_plus_x_for_x_in_0_1) is emitted as integer IR.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir

from mcuc.ir.fixedpoint_exp import rescale
from mcuc.ir.ops import kinds
from mcuc.ir.ops.common import dtype_range
from mcuc.ir.ops.softmax import ACCUMULATION_INTEGER_BITS, exps_of_row_differences, softmax_params
from mcuc.ir.ops.softmax_int16 import exp_lut, int16_params, one_over_one_plus_x_lut
from mcuc.ir.numerics import OrtInteger, TFLiteQ31

from ..codegen import KernelCall
from ..emitter import F32, I16, I32, I64, Emitter
from ..floatops import f32, fma
from ..fixedpoint import (INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier, rounding_divide_by_pot,
                          saturating_rounding_doubling_high_mul)
from . import register


def softmax_tables(op) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(exp, rescaled exp, in range) for differences 0, -1, ..., -255 (index = -diff)."""
    params = softmax_params(op)
    diff = -np.arange(256, dtype=np.int64)
    in_range = diff >= params.diff_min
    exps = np.where(in_range, exps_of_row_differences(np.where(in_range, diff, 0), params), 0)
    shares = rescale(exps, 0, ACCUMULATION_INTEGER_BITS)
    return exps.astype(np.int32), np.asarray(shares).astype(np.int32), in_range.astype(np.int8)


def _saturating_multiply_by_pot(em: Emitter, x: ir.Value, exponent: int) -> ir.Value:
    """gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent."""
    b = em.b
    threshold = (1 << (31 - exponent)) - 1
    shifted = b.shl(x, em.i32(exponent))
    high = b.select(b.icmp_signed(">", x, em.i32(threshold)), em.i32(INT32_MAX), shifted)
    return b.select(b.icmp_signed("<", x, em.i32(-threshold)), em.i32(INT32_MIN), high)


def _one_over_one_plus_x(em: Emitter, a: ir.Value) -> ir.Value:
    """1 / (1 + a) for a Q0.31 a in [0, 1): three Newton-Raphson steps in Q2.29."""
    b = em.b
    total = b.add(b.sext(a, I64), ir.Constant(I64, INT32_MAX))
    sign = b.select(b.icmp_signed(">=", total, ir.Constant(I64, 0)), ir.Constant(I64, 1), ir.Constant(I64, -1))
    half_denominator = b.trunc(b.sdiv(b.add(total, sign), ir.Constant(I64, 2)), I32)
    x = b.add(em.i32(1515870810), saturating_rounding_doubling_high_mul(em, half_denominator, em.i32(-1010580540)))
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(em, half_denominator, x)
        one_minus = b.sub(em.i32(1 << 29), half_denominator_times_x)
        x = b.add(x, _saturating_multiply_by_pot(em, saturating_rounding_doubling_high_mul(em, x, one_minus), 2))
    return _saturating_multiply_by_pot(em, x, 1)


def row_maximum(em: Emitter, x_ptr: ir.Value, base: ir.Value, depth: int, dtype: str, slot: ir.Value) -> ir.Value:
    """The largest of the row's `depth` inputs from element `base` (through `slot`,
    starting from the type's minimum)."""
    b = em.b
    b.store(em.i32(dtype_range(dtype)[0]), slot)
    with em.loop(depth, "k0") as k:
        b.store(em.smax(b.load(slot), em.load_i32(x_ptr, b.add(base, k), dtype)), slot)
    return b.load(slot)


def _lut_lookup(em: Emitter, value: ir.Value, table: ir.Value) -> ir.Value:
    """softmax_int16.lut_lookup on an i32 in int16 range: the high 9 bits index, the low
    7 interpolate with an int16 slope; the int16 result widened to i32."""
    b = em.b
    index = b.sext(b.add(b.ashr(value, em.i32(7)), em.i32(256)), I64)
    offset = b.and_(value, em.i32(0x7F))
    base = em.load_i32(table, index, "int16")
    following = em.load_i32(table, b.add(index, em.i64(1)), "int16")
    slope = b.sext(b.trunc(b.sub(following, base), I16), I32)
    delta = b.ashr(b.add(b.mul(slope, offset), em.i32(64)), em.i32(7))
    return b.sext(b.trunc(b.add(base, delta), I16), I32)


def _softmax_int16(call: KernelCall) -> None:
    """tflite-micro's int16 SOFTMAX (mcuc.ir.ops.softmax_int16): the exps, looked up
    from the scaled differences, wait in the output row (as the reference keeps them)
    while the row's sum goes through the 1/(1 + x) table."""
    em, op = call.em, call.op
    b = em.b
    x_t, y_t = op.input, op.output
    p = int16_params(op)
    left, right = max(p.input_shift, 0), max(-p.input_shift, 0)
    exp_table = em.const_ptr(np.array(exp_lut(), np.int16), call.hint("exp16"))
    recip_table = em.const_ptr(np.array(one_over_one_plus_x_lut(), np.int16), call.hint("recip16"))
    depth = x_t.shape[-1]
    rows = x_t.size // depth
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    row_max = em.slot(I32, "max")
    total = em.slot(I32, "sum")
    ctlz = em.ctx.intrinsic("llvm.ctlz.i32", I32, [I32, ir.IntType(1)])
    with em.loop(rows, "row") as r:
        base = em.mul(r, depth)
        maximum = row_maximum(em, x_ptr, base, depth, "int16", row_max)
        b.store(em.i32(0), total)
        with em.loop(depth, "k1") as k:
            diff = b.sub(em.load_i32(x_ptr, b.add(base, k), "int16"), maximum)
            scaled = multiply_by_quantized_multiplier(em, diff, p.input_multiplier, left, right)
            e = _lut_lookup(em, em.clamp(b.add(scaled, em.i32(32767)), -32768, 32767), exp_table)
            em.store(b.trunc(e, I16), y_ptr, b.add(base, k))
            b.store(b.add(b.load(total), e), total)
        sum_of_exps = b.load(total)
        headroom_plus_one = b.call(ctlz, [sum_of_exps, ir.Constant(ir.IntType(1), 0)])
        wide = b.shl(b.sext(sum_of_exps, I64), b.zext(b.sub(headroom_plus_one, em.i32(1)), I64))
        shifted = b.trunc(b.ashr(b.add(wide, em.i64(1 << 13)), em.i64(14)), I32)
        recentered = em.clamp(b.sub(shifted, em.i32((1 << 15) + (1 << 16))), -32768, 32767)
        reciprocal = b.sext(_lut_lookup(em, recentered, recip_table), I64)
        right_shift = b.zext(b.sub(em.i32(31), headroom_plus_one), I64)
        rounding = b.shl(em.i64(1), b.sub(right_shift, em.i64(1)))
        with em.loop(depth, "k2") as k:
            e = b.sext(em.load(y_ptr, b.add(base, k)), I64)
            result = b.trunc(b.ashr(b.add(b.mul(e, reciprocal), rounding), right_shift), I32)
            em.store(b.trunc(em.clamp(result, 0, 32767), I16), y_ptr, b.add(base, k))


@register(kinds.SOFTMAX, numerics=TFLiteQ31)
def softmax(call: KernelCall) -> None:
    em, op = call.em, call.op
    if op.input.dtype == "int16":
        return _softmax_int16(call)
    b = em.b
    x_t, y_t = op.input, op.output
    params = softmax_params(op)
    exps, shares, in_range = softmax_tables(op)
    exp_table = em.const_ptr(exps, call.hint("exp"))
    share_table = em.const_ptr(shares, call.hint("share"))
    range_table = em.const_ptr(in_range, call.hint("inrange"))
    depth = x_t.shape[-1]
    rows = x_t.size // depth
    lo, hi = dtype_range(y_t.dtype)
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    row_max = em.slot(I32, "max")
    total = em.slot(I32, "sum")
    ctlz = em.ctx.intrinsic("llvm.ctlz.i32", I32, [I32, ir.IntType(1)])
    with em.loop(rows, "row") as r:
        base = em.mul(r, depth)
        maximum = row_maximum(em, x_ptr, base, depth, x_t.dtype, row_max)

        def table_index(k: ir.Value) -> ir.Value:
            # max - x in [0, 255]: the table index of the difference x - max.
            return b.zext(b.sub(maximum, em.load_i32(x_ptr, b.add(base, k), x_t.dtype)), I64)

        b.store(em.i32(0), total)
        with em.loop(depth, "k1") as k:
            b.store(b.add(b.load(total), em.load(share_table, table_index(k))), total)
        sum_of_exps = b.load(total)
        # GetReciprocal(sum, 12): 1/sum as a Q0.31 fraction and its power-of-two exponent.
        headroom_plus_one = b.call(ctlz, [sum_of_exps, ir.Constant(ir.IntType(1), 0)])
        num_bits_over_unit = b.sub(em.i32(ACCUMULATION_INTEGER_BITS), headroom_plus_one)
        shifted = b.shl(sum_of_exps, em.smin(headroom_plus_one, em.i32(31)))
        reciprocal = _one_over_one_plus_x(em, b.add(shifted, em.i32(INT32_MIN)))
        # The reference rejects rows whose exponent leaves [0, 31]; clamping keeps the IR
        # defined there and changes nothing elsewhere.
        exponent = em.clamp(b.add(num_bits_over_unit, em.i32(31 - params.output_bits)), 0, 31)
        with em.loop(depth, "k2") as k:
            index = table_index(k)
            scaled = saturating_rounding_doubling_high_mul(em, reciprocal, em.load(exp_table, index))
            value = em.clamp(b.add(rounding_divide_by_pot(em, scaled, exponent), em.i32(lo)), lo, hi)
            inside = b.icmp_signed("!=", em.load(range_table, index), ir.Constant(ir.IntType(8), 0))
            y = b.select(inside, value, em.i32(lo))
            em.store(em.narrow(y, y_t.dtype), y_ptr, b.add(base, k))


@register(kinds.SOFTMAX, numerics=OrtInteger)
def softmax_onnxruntime(call: KernelCall) -> None:
    """onnxruntime's QLinearSoftmax (mcuc.ir.ort_numerics.qlinear_softmax): a float32
    exp table read at 255 - (row max - x), the row sum in the AVX2 kernel's order (eight
    lanes over blocks of 16, the tail alone, then tail + lane 0 + ... + lane 7), one
    reciprocal per row, then rne(fma(e, scale, zero point)) saturated to the type."""
    em, op = call.em, call.op
    b = em.b
    x_t, y_t = op.input, op.output
    offset = op.attrs.numerics.offset
    length = x_t.shape[-1]
    rows = x_t.size // length
    x_scale = float(np.float32(x_t.quant.scale[0]))
    shift = max(0.0, math.log(float(np.finfo(np.float32).max) / length) - 5.0) / x_scale
    table = np.exp((np.arange(256, dtype=np.float64) - 255 + shift) * x_scale).astype(np.float32)
    table_ptr = em.const_ptr(table, call.hint("exp"))
    multiplier = np.float32(np.floor(np.float32(1.0) / np.float32(y_t.quant.scale[0])))
    zero = f32(np.float32(y_t.quant.scalar_zero_point + offset))
    lo, hi = (0, 255) if op.attrs.numerics.uint8 else (-128, 127)
    blocks = length // 16 * 16
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    row_max = em.slot(I32, "max")
    lanes = em.slot(F32, "lanes", count=8)
    total = em.slot(F32, "total")
    with em.loop(rows, "row") as r:
        base = em.mul(r, length)
        b.store(em.i32(-(2**31)), row_max)
        with em.loop(length, "k0") as k:
            b.store(em.smax(b.load(row_max), em.load_i32(x_ptr, b.add(base, k), x_t.dtype)), row_max)
        maximum = b.load(row_max)

        def exp_at(k: ir.Value) -> ir.Value:
            index = b.sub(em.i32(255), b.sub(maximum, em.load_i32(x_ptr, b.add(base, k), x_t.dtype)))
            return em.load(table_ptr, b.zext(index, I64))

        for j in range(8):
            em.store(f32(0.0), lanes, j)
        if blocks:
            with em.loop(blocks // 8, "g") as g:
                with em.loop(8, "lane") as j:
                    em.store(b.fadd(em.load(lanes, j), exp_at(b.add(em.mul(g, 8), j))), lanes, j)
        b.store(f32(0.0), total)
        if length > blocks:
            with em.loop(length - blocks, "tail") as t:
                b.store(b.fadd(b.load(total), exp_at(em.add(t, blocks))), total)
        row_sum = b.load(total)
        for j in range(8):
            row_sum = b.fadd(row_sum, em.load(lanes, j))
        scale = b.fmul(b.fdiv(f32(1.0), row_sum), f32(multiplier))
        with em.loop(length, "k1") as k:
            value = fma(em, exp_at(k), scale, zero)
            rounded = b.call(em.ctx.intrinsic("llvm.roundeven.f32", F32, [F32]), [value])
            fits = b.and_(b.fcmp_ordered(">=", rounded, f32(-2.0**31)), b.fcmp_ordered("<", rounded, f32(2.0**31)))
            as_int = b.select(fits, b.fptosi(rounded, I32), em.i32(-(2**31)))
            y = em.add(em.clamp(as_int, lo, hi), -offset)
            em.store(em.narrow(y, y_t.dtype), y_ptr, b.add(base, k))
