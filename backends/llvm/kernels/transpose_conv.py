"""TRANSPOSE_CONV (int8; int16 with int64 sums, mcuc.ir.ops.transpose_conv) in gather form: for each output
element, the taps (fy, fx) whose input pixel exists, (oy + pad_h - fy) a multiple of
stride_h inside the input, and likewise for columns; an int32 sum over the input channels
of (x - x_zp) * w, plus the bias, then the per-channel output stage. The sums are the
reference's scatter sums reordered (exact integers), so no scratch is needed."""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from mcuc.ir.numerics import TFLiteQ31
from mcuc.ir.ops import kinds
from mcuc.ir.ops.batch_matmul import reduced_multiplier
from mcuc.ir.ops.transpose_conv import requant_params

from ..codegen import KernelCall
from ..emitter import I32, I64
from ..fixedpoint import ChannelRequant
from . import register


def _source(em, o, pad: int, f, stride: int, size: int):
    """(in range, input index) of output coordinate o under tap f (i64 values)."""
    t = em.b.sub(em.b.add(o, em.i64(pad)), f)
    inside = em.in_range(t, 0, size * stride)
    if stride == 1:
        return inside, t
    aligned = em.b.icmp_unsigned("==", em.b.urem(t, em.i64(stride)), em.i64(0))
    return em.b.and_(inside, aligned), em.b.udiv(t, em.i64(stride))


@register(kinds.TRANSPOSE_CONV, numerics=TFLiteQ31)
def transpose_conv(call: KernelCall) -> None:
    em, op = call.em, call.op
    a = op.attrs
    x_t, w_t, y_t = op.inputs[0], op.inputs[1], op.output
    n, ih, iw, ic = x_t.shape
    oc, kh, kw, _ = w_t.shape
    oh, ow = a.out_hw
    x, y = call.ptr(x_t), call.ptr(y_t)
    w = em.const_ptr(w_t.data.astype(np.int8), call.hint("w"), "int8")
    wide = x_t.dtype == "int16"  # 16x8: int64 sums and output stage, no zero points
    acc_type, acc_dtype = (I64, "int64") if wide else (I32, "int32")
    has_bias = len(op.inputs) > 2 and op.inputs[2] is not None
    bias = em.const_ptr(op.inputs[2].data.astype(acc_dtype), call.hint("bias"), acc_dtype) if has_bias else None
    mult, shift = requant_params(op)
    if wide:
        reduced = em.const_ptr(np.asarray(reduced_multiplier(mult), np.int64), call.hint("m15"), "int64")
        totals = em.const_ptr((15 - np.asarray(shift, np.int64)), call.hint("total"), "int64")
    else:
        requant = ChannelRequant(em, mult, shift, y_t.quant.scalar_zero_point, a.act_min, a.act_max, call.hint())
    zp = x_t.quant.scalar_zero_point
    acc = em.slot(acc_type, "acc")
    with em.nest((n, oh, ow, oc), "o") as (b, oy, ox, c):
        em.b.store(em.load(bias, c) if has_bias else ir.Constant(acc_type, 0), acc)
        with em.loop(kh, "fy") as fy:
            ok_y, iy = _source(em, oy, a.pad[0], fy, a.stride[0], ih)
            with em.if_then(ok_y):
                with em.loop(kw, "fx") as fx:
                    ok_x, ix = _source(em, ox, a.pad[1], fx, a.stride[1], iw)
                    with em.if_then(ok_x):
                        x_base = em.index([(b, ih * iw * ic), (iy, iw * ic), (ix, ic)])
                        w_base = em.index([(c, kh * kw * ic), (fy, kw * ic), (fx, ic)])
                        with em.loop(ic, "k") as k:
                            xv = em.add(em.load_i32(x, em.b.add(x_base, k), x_t.dtype), -zp)
                            wv = em.load_i32(w, em.b.add(w_base, k), "int8")
                            product = em.b.mul(xv, wv)
                            em.b.store(em.b.add(em.b.load(acc), em.b.sext(product, I64) if wide else product), acc)
        if wide:  # int64 MultiplyByQuantizedMultiplier (mcuc.ir.ops.batch_matmul.multiply_int64)
            total = em.load(totals, c)
            rounding = em.b.shl(em.i64(1), em.b.sub(total, em.i64(1)))
            scaled = em.b.ashr(em.b.add(em.b.mul(em.b.load(acc), em.load(reduced, c)), rounding), total)
            result = em.clamp(em.b.trunc(scaled, I32), a.act_min, a.act_max)
        else:
            result = requant(em.b.load(acc), c)
        em.store(em.narrow(result, y_t.dtype), y, em.index([(b, oh * ow * oc), (oy, ow * oc), (ox, oc), (c, 1)]))
