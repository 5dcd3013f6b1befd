"""LOG_SOFTMAX (int8, mcuc.ir.ops.log_softmax): per row the maximum, the wrapping sum of
the tabulated shares (Q12.19), TFLite's log_x_for_x_greater_than_or_equal_to_1<5> of it
emitted as integer IR (the same steps as the op module's log_x_ge_1), the adjusted
minimum difference, then each output from the tabulated Q5.26 difference."""
from __future__ import annotations

from llvmlite import ir

from mcuc.ir.numerics import TFLiteQ31
from mcuc.ir.ops import kinds
from mcuc.ir.ops.log_softmax import (
    ALPHA_D,
    ALPHA_F,
    ALPHA_I,
    ALPHA_N,
    LOG_2,
    SQRT_HALF,
    SQRT_SQRT_HALF,
    difference_tables,
    log_softmax_params,
)

from ..codegen import KernelCall
from ..emitter import I32, I64, Emitter
from ..fixedpoint import INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier, rounding_divide_by_pot
from ..fixedpoint import saturating_rounding_doubling_high_mul as srdhm
from . import register
from .softmax import _one_over_one_plus_x, _saturating_multiply_by_pot, row_maximum


def _sat_shl(em: Emitter, x: ir.Value, exponent: ir.Value) -> ir.Value:
    """SaturatingRoundingMultiplyByPOTParam for a run-time exponent >= 0."""
    b = em.b
    threshold = b.sub(b.shl(em.i32(1), b.sub(em.i32(31), exponent)), em.i32(1))
    shifted = b.shl(x, exponent)
    high = b.select(b.icmp_signed(">", x, threshold), em.i32(INT32_MAX), shifted)
    return b.select(b.icmp_signed("<", x, b.neg(threshold)), em.i32(INT32_MIN), high)


def _sat_add(em: Emitter, a: ir.Value, c: int) -> ir.Value:
    b = em.b
    total = b.add(b.sext(a, I64), ir.Constant(I64, c))
    clamped = em.smin(em.smax(total, ir.Constant(I64, INT32_MIN)), ir.Constant(I64, INT32_MAX))
    return b.trunc(clamped, I32)


def _rounding_half_sum(em: Emitter, a: ir.Value, c: int) -> ir.Value:
    b = em.b
    total = b.add(b.sext(a, I64), ir.Constant(I64, c))
    sign = b.select(b.icmp_signed(">=", total, ir.Constant(I64, 0)), ir.Constant(I64, 1), ir.Constant(I64, -1))
    return b.trunc(b.sdiv(b.add(total, sign), ir.Constant(I64, 2)), I32)


def log_x_q12_to_q5(em: Emitter, z_a: ir.Value) -> ir.Value:
    b = em.b
    ctlz = em.ctx.intrinsic("llvm.ctlz.i32", I32, [I32, ir.IntType(1)])
    quarter = 1 << 23
    ha = b.call(ctlz, [z_a, ir.Constant(ir.IntType(1), 0)])
    r_a = _saturating_multiply_by_pot(em, srdhm(em, _sat_shl(em, z_a, b.sub(ha, em.i32(1))), em.i32(SQRT_HALF)), 1)
    z_a_adj = _sat_add(em, _sat_shl(em, b.sub(em.i32(12), ha), em.i32(25)), quarter)
    z_b = srdhm(em, z_a, em.i32(SQRT_HALF))
    hb = b.sub(b.call(ctlz, [z_b, ir.Constant(ir.IntType(1), 0)]), em.i32(1))
    r_b = _sat_shl(em, z_a, hb)
    z_b_adj = _sat_add(em, _sat_shl(em, b.sub(em.i32(12), hb), em.i32(25)), -quarter)
    r = em.smin(r_a, r_b)
    z_adj = em.smax(z_a_adj, z_b_adj)
    p = _rounding_half_sum(em, r, SQRT_SQRT_HALF)
    q = b.sub(r, em.i32(SQRT_SQRT_HALF))
    q = b.add(q, q)
    common_sq = srdhm(em, q, q)
    num = b.add(srdhm(em, q, r), srdhm(em, srdhm(em, q, common_sq), em.i32(ALPHA_N)))
    inner = b.add(b.add(em.i32(ALPHA_I), q), srdhm(em, em.i32(ALPHA_D), common_sq))
    denom_minus_one = b.add(srdhm(em, p, inner), srdhm(em, em.i32(ALPHA_F), q))
    recip = _one_over_one_plus_x(em, denom_minus_one)
    num_scaled = rounding_divide_by_pot(em, num, 6)
    total = b.add(srdhm(em, z_adj, em.i32(LOG_2)), srdhm(em, num_scaled, recip))
    return _saturating_multiply_by_pot(em, total, 1)


@register(kinds.LOG_SOFTMAX, numerics=TFLiteQ31)
def log_softmax(call: KernelCall) -> None:
    em, op = call.em, call.op
    b = em.b
    x_t, y_t = op.input, op.output
    p = log_softmax_params(op)
    q5, shares = difference_tables(op)
    q5_table = em.const_ptr(q5, call.hint("q5"))
    share_table = em.const_ptr(shares, call.hint("share"))
    depth = x_t.shape[-1]
    rows = x_t.size // depth
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    row_max, total = em.slot(I32, "max"), em.slot(I32, "sum")
    with em.loop(rows, "row") as r:
        base = em.mul(r, depth)
        maximum = row_maximum(em, x_ptr, base, depth, "int8", row_max)

        def difference(k: ir.Value) -> ir.Value:  # max - x in [0, 255]
            return b.sub(maximum, em.load_i32(x_ptr, b.add(base, k), "int8"))

        b.store(em.i32(0), total)
        with em.loop(depth, "k1") as k:
            b.store(b.add(b.load(total), em.load(share_table, b.zext(difference(k), I64))), total)
        log_sum = log_x_q12_to_q5(em, b.load(total))
        left, right = max(p.reverse_shift, 0), max(-p.reverse_shift, 0)
        scaled = multiply_by_quantized_multiplier(em, b.add(log_sum, em.i32(INT32_MIN)), p.reverse_divisor, left, right)
        adjusted = em.smax(scaled, em.i32(p.diff_min - 1))
        with em.loop(depth, "k2") as k:
            d = difference(k)
            value = rounding_divide_by_pot(em, b.sub(em.load(q5_table, b.zext(d, I64)), log_sum), 22)
            value = em.clamp(b.add(value, em.i32(127)), -128, 127)
            y = b.select(b.icmp_signed(">", b.neg(d), adjusted), value, em.i32(-128))
            em.store(em.narrow(y, "int8"), y_ptr, b.add(base, k))
