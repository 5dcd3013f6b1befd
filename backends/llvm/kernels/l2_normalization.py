"""L2_NORMALIZATION (int8, mcuc.ir.ops.l2_normalization): per row the sum of squares,
GetInvSqrtQuantizedMultiplierExp emitted as integer IR (the normalisation loop in closed
form: k = max(0, (bit length - 28) / 2) right shifts by two; five Newton-Raphson steps
unrolled), then each output's MultiplyByQuantizedMultiplier with the row's run-time
multiplier and shift."""
from __future__ import annotations

from llvmlite import ir

from mcuc.ir.numerics import TFLiteQ31
from mcuc.ir.ops import kinds
from mcuc.ir.ops.l2_normalization import HALF_SQRT_2, HALF_THREE_Q3, OUTPUT_SCALE_SHIFT

from ..codegen import KernelCall
from ..emitter import I32, Emitter
from ..fixedpoint import INT32_MAX, multiply_by_quantized_multiplier, rounding_divide_by_pot
from ..fixedpoint import saturating_rounding_doubling_high_mul as srdhm
from . import register
from .softmax import _saturating_multiply_by_pot


def inv_sqrt(em: Emitter, acc: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(multiplier, left shift, right shift) pieces: returns (multiplier, shift <= 0)."""
    b = em.b
    ctlz = em.ctx.intrinsic("llvm.ctlz.i32", I32, [I32, ir.IntType(1)])
    small = b.icmp_signed("<=", acc, em.i32(1))
    x_in = b.select(small, em.i32(1 << 28), acc)
    bits = b.sub(em.i32(32), b.call(ctlz, [x_in, ir.Constant(ir.IntType(1), 0)]))
    k = em.smax(b.sdiv(b.sub(bits, em.i32(28)), em.i32(2)), em.i32(0))
    x_in = b.ashr(x_in, b.mul(k, em.i32(2)))
    pairs = b.sub(b.sdiv(b.sub(b.call(ctlz, [x_in, ir.Constant(ir.IntType(1), 0)]), em.i32(1)), em.i32(2)),
                  em.i32(1))
    shift = b.sub(b.add(em.i32(11), k), pairs)
    x_in = b.shl(x_in, b.mul(pairs, em.i32(2)))
    half_input = rounding_divide_by_pot(em, b.ashr(x_in, em.i32(1)), 1)
    x = em.i32(1 << 28)
    for _ in range(5):
        x3 = _saturating_multiply_by_pot(em, srdhm(em, srdhm(em, x, x), x), 6)
        x = _saturating_multiply_by_pot(em, b.sub(srdhm(em, em.i32(HALF_THREE_Q3), x), srdhm(em, half_input, x3)), 3)
    x = srdhm(em, x, em.i32(HALF_SQRT_2))
    negative = b.icmp_signed("<", shift, em.i32(0))
    x = b.select(negative, b.shl(x, b.sub(em.i32(0), shift)), x)
    shift = b.select(negative, em.i32(0), shift)
    return b.select(small, em.i32(INT32_MAX), x), b.select(small, em.i32(0), b.sub(em.i32(0), shift))


@register(kinds.L2_NORMALIZATION, numerics=TFLiteQ31)
def l2_normalization(call: KernelCall) -> None:
    em, op = call.em, call.op
    b = em.b
    x_t, y_t = op.input, op.output
    zp = x_t.quant.scalar_zero_point
    depth = x_t.shape[-1]
    rows = x_t.size // depth
    x_ptr, y_ptr = call.value_ptr(x_t), call.ptr(y_t)
    total = em.slot(I32, "sum")
    with em.loop(rows, "row") as r:
        base = em.mul(r, depth)
        b.store(em.i32(0), total)
        with em.loop(depth, "k0") as k:
            v = em.add(em.load_i32(x_ptr, b.add(base, k), "int8"), -zp)
            b.store(b.add(b.load(total), b.mul(v, v)), total)
        multiplier, shift = inv_sqrt(em, b.load(total))
        shift = b.add(shift, em.i32(OUTPUT_SCALE_SHIFT))
        left = em.smax(shift, em.i32(0))
        right = em.smax(b.sub(em.i32(0), shift), em.i32(0))
        with em.loop(depth, "k1") as k:
            v = em.add(em.load_i32(x_ptr, b.add(base, k), "int8"), -zp)
            y = em.clamp(multiply_by_quantized_multiplier(em, v, multiplier, left, right), -128, 127)
            em.store(em.narrow(y, "int8"), y_ptr, b.add(base, k))
