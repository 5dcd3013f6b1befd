"""TFLite's fixed-point requantization as LLVM IR: the same functions as
mcuc.ir.fixedpoint (DESIGN.md, Numerics), emitted inline on i32 values.

Every function here is held equal to its numpy twin over edge values and the whole
int32 range by tests/backends/llvm/test_llvm_fixedpoint.py.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from mcuc.ir.ops.batch_matmul import reduced_multiplier

from .emitter import I32, I64, Emitter

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def saturating_rounding_doubling_high_mul(em: Emitter, a: ir.Value, b: ir.Value) -> ir.Value:
    """round(a * b / 2^31), ties away from zero; INT32_MIN * INT32_MIN saturates."""
    bld = em.b
    ab = bld.mul(bld.sext(a, I64), bld.sext(b, I64), flags=["nsw"])
    non_negative = bld.icmp_signed(">=", ab, ir.Constant(I64, 0))
    nudge = bld.select(non_negative, ir.Constant(I64, 1 << 30), ir.Constant(I64, 1 - (1 << 30)))
    total = bld.add(ab, nudge, flags=["nsw"])
    # C's division truncates toward zero, as LLVM's sdiv does.
    high = bld.trunc(bld.sdiv(total, ir.Constant(I64, 1 << 31)), I32)
    if isinstance(b, ir.Constant) and b.constant != INT32_MIN:
        return high
    overflow = bld.and_(bld.icmp_signed("==", a, ir.Constant(I32, INT32_MIN)),
                        bld.icmp_signed("==", b, ir.Constant(I32, INT32_MIN)))
    return bld.select(overflow, ir.Constant(I32, INT32_MAX), high)


def rounding_divide_by_pot(em: Emitter, x: ir.Value, exponent: ir.Value | int) -> ir.Value:
    """x / 2^exponent rounded to nearest, ties away from zero (exponent in [0, 31])."""
    bld = em.b
    if isinstance(exponent, int):
        if exponent == 0:
            return x
        exponent = ir.Constant(I32, exponent)
    mask = bld.sub(bld.shl(ir.Constant(I32, 1), exponent), ir.Constant(I32, 1))
    remainder = bld.and_(x, mask)
    negative = bld.zext(bld.icmp_signed("<", x, ir.Constant(I32, 0)), I32)
    threshold = bld.add(bld.lshr(mask, ir.Constant(I32, 1)), negative)
    round_up = bld.zext(bld.icmp_signed(">", remainder, threshold), I32)
    return bld.add(bld.ashr(x, exponent), round_up)


def multiply_by_quantized_multiplier(em: Emitter, x: ir.Value, multiplier: ir.Value | int,
                                     left_shift: ir.Value | int, right_shift: ir.Value | int) -> ir.Value:
    """TFLite's MultiplyByQuantizedMultiplier with the shift pre-split at compile time
    into left = max(shift, 0) and right = max(-shift, 0) (see split_shift)."""
    bld = em.b
    if isinstance(multiplier, int):
        multiplier = ir.Constant(I32, multiplier)
    if isinstance(left_shift, int):
        scaled = bld.shl(x, ir.Constant(I32, left_shift)) if left_shift else x
    else:
        scaled = bld.shl(x, left_shift)
    return rounding_divide_by_pot(em, saturating_rounding_doubling_high_mul(em, scaled, multiplier), right_shift)


def split_shift(shift) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) shift arrays of a TFLite shift: left = max(shift, 0), right = max(-shift, 0)."""
    shift = np.asarray(shift, np.int64)
    return np.maximum(shift, 0).astype(np.int32), np.maximum(-shift, 0).astype(np.int32)


def multiply_int64_constant(em: Emitter, acc: ir.Value, multiplier: int, shift: int) -> ir.Value:
    """TFLite's int64 MultiplyByQuantizedMultiplier with constants (the 16x8 stage,
    mcuc.ir.ops.batch_matmul.multiply_int64): (acc * reduced + 2^(total - 1)) >> total
    with total = 15 - shift, truncated to i32 (`acc` an i64)."""
    total = 15 - shift
    scaled = em.b.add(em.b.mul(acc, em.i64(reduced_multiplier(multiplier))), em.i64(1 << (total - 1)))
    return em.b.trunc(em.b.ashr(scaled, em.i64(total)), I32)


def requantize_constant(em: Emitter, acc: ir.Value, multiplier: int, shift: int,
                        zero_point: int, act_min: int, act_max: int) -> ir.Value:
    """Per-tensor output stage: scale by (multiplier, shift), add the zero point, clamp."""
    left, right = max(shift, 0), max(-shift, 0)
    y = multiply_by_quantized_multiplier(em, acc, int(multiplier), left, right)
    return em.clamp(em.add(y, int(zero_point)), act_min, act_max)


class ChannelRequant:
    """Per-channel output stage with the (multiplier, left, right) arrays as constant
    globals: requantize(acc, channel) loads the three and applies the output stage.
    A per-tensor stage (all channels equal) is folded to constants instead."""

    def __init__(self, em: Emitter, multipliers, shifts, zero_point: int, act_min: int, act_max: int, hint: str):
        self.em = em
        multipliers = np.asarray(multipliers, np.int64)
        shifts = np.asarray(shifts, np.int64)
        self.zero_point, self.act_min, self.act_max = int(zero_point), int(act_min), int(act_max)
        self.uniform = bool(np.all(multipliers == multipliers[0]) and np.all(shifts == shifts[0]))
        if self.uniform:
            self.multiplier, self.shift = int(multipliers[0]), int(shifts[0])
        else:
            left, right = split_shift(shifts)
            self.multipliers = em.const_ptr(multipliers.astype(np.int32), f"{hint}.mult")
            self.lefts = em.const_ptr(left, f"{hint}.lshift")
            self.rights = em.const_ptr(right, f"{hint}.rshift")

    def __call__(self, acc: ir.Value, channel: ir.Value) -> ir.Value:
        em = self.em
        if self.uniform:
            return requantize_constant(em, acc, self.multiplier, self.shift, self.zero_point, self.act_min, self.act_max)
        y = multiply_by_quantized_multiplier(em, acc, em.load(self.multipliers, channel),
                                             em.load(self.lefts, channel), em.load(self.rights, channel))
        return em.clamp(em.add(y, self.zero_point), self.act_min, self.act_max)
