"""BATCH_MATMUL (int8, int16, mcuc.ir.ops.batch_matmul): a loop nest over the output's
batch axes, rows and columns, an inner loop over the depth with the sum in a stack slot
(promoted to a register; int32, or int64 for int16), then TFLite's output stage (the int64
one for int16). Operand element strides come from
the op module's `geometry` (0 along broadcast batch axes; adj_x / adj_y only swap
strides)."""
from __future__ import annotations

from mcuc.ir.numerics import TFLiteQ31
from mcuc.ir.ops import kinds
from mcuc.ir.ops.batch_matmul import geometry, quant

from ..codegen import KernelCall
from ..emitter import I32, I64
from ..fixedpoint import multiply_int64_constant, requantize_constant
from . import register


@register(kinds.BATCH_MATMUL, numerics=TFLiteQ31)
def batch_matmul(call: KernelCall) -> None:
    em, op = call.em, call.op
    g, q = geometry(op), quant(op)
    lhs_t, rhs_t, y_t = op.inputs[0], op.inputs[1], op.output
    lhs, rhs, y = call.value_ptr(lhs_t), call.value_ptr(rhs_t), call.ptr(y_t)
    out_batch = [0] * len(g.batch)
    step = g.rows * g.cols
    for i in range(len(g.batch) - 1, -1, -1):
        out_batch[i] = step
        step *= g.batch[i]
    dtype = y_t.dtype
    wide = dtype == "int16"
    acc = em.slot(I64 if wide else I32, "acc")
    with em.nest(g.batch, "b") as b:
        lhs_base = em.index(list(zip(b, g.lhs_batch)))
        rhs_base = em.index(list(zip(b, g.rhs_batch)))
        out_base = em.index(list(zip(b, out_batch)))
        with em.loop(g.rows, "i") as i, em.loop(g.cols, "j") as j:
            lhs_row = em.b.add(lhs_base, em.mul(i, g.lhs_row))
            rhs_col = em.b.add(rhs_base, em.mul(j, g.rhs_col))
            em.b.store(em.i64(0) if wide else em.i32(0), acc)
            with em.loop(g.depth, "k") as k:
                a = em.add(em.load_i32(lhs, em.b.add(lhs_row, em.mul(k, g.lhs_depth)), dtype), -q.lhs_zero_point)
                c = em.add(em.load_i32(rhs, em.b.add(rhs_col, em.mul(k, g.rhs_depth)), dtype), -q.rhs_zero_point)
                product = em.b.mul(a, c)
                em.b.store(em.b.add(em.b.load(acc), em.b.sext(product, I64) if wide else product), acc)
            if wide:  # int64 MultiplyByQuantizedMultiplier (mcuc.ir.ops.batch_matmul.multiply_int64)
                result = em.clamp(multiply_int64_constant(em, em.b.load(acc), q.multiplier, q.shift), -32768, 32767)
            else:
                result = requantize_constant(em, em.b.load(acc), q.multiplier, q.shift, q.output_zero_point,
                                             -128, 127)
            em.store(em.narrow(result, dtype), y, em.b.add(out_base, em.b.add(em.mul(i, g.cols), j)))
