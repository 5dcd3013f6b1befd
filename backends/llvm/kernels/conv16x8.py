"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with int16 activations and int8 weights
(16x8, mcuc.ir.ops.int16_stage), one output element at a time: every layer as a grouped
convolution over OHWI weights (a depthwise conv: one input channel per group, its
weights [1, kh, kw, C*M] moved to [C*M, kh, kw, 1]; a fully connected layer: a 1x1 window
over rows of `depth` channels), padding taps skipped. The sum is kept in the bias's type:
int64 (or no bias) with TFLite's int64 output stage, or int32, wrapping as tflite-micro's
loop does, with its Q31 stage."""
from __future__ import annotations

import numpy as np

from mcuc.ir.ops.int16_stage import grouped_conv

from ..codegen import KernelCall
from ..emitter import I32, I64
from ..fixedpoint import ChannelRequant
from .conv_common import window_coordinate


def conv16x8(call: KernelCall) -> None:
    em, op = call.em, call.op
    b = em.b
    x_t, y_t = op.inputs[0], op.output
    g = grouped_conv(op)
    n, h, w, c = g.x_shape
    _, oh, ow, _ = g.y_shape
    oc, kh, kw, cg = g.weights.shape
    (sh, sw), (dh, dw), p = g.stride, g.dilation, g.padding
    top, left, padded = p.top, p.left, any((p.top, p.bottom, p.left, p.right))
    cout_g = oc // (c // cg)
    a = op.attrs
    bias_t = op.inputs[2] if len(op.inputs) > 2 else None
    acc_type, acc_dtype = (I32, "int32") if g.q31 else (I64, "int64")
    bias = em.const_ptr(np.zeros(oc, acc_dtype) if bias_t is None else bias_t.data.astype(acc_dtype),
                        call.hint("bias"), acc_dtype)
    wptr = em.const_ptr(g.weights.astype(np.int8), call.hint("weights"), "int8")
    in_zp = x_t.quant.scalar_zero_point  # 0 but for FULLY_CONNECTED
    out_zp = y_t.quant.scalar_zero_point
    if g.q31:
        requant = ChannelRequant(em, g.multiplier, g.shift, out_zp, a.act_min, a.act_max, call.hint())
    else:
        reduced = em.const_ptr(g.multiplier, call.hint("m15"), "int64")
        totals = em.const_ptr(g.shift, call.hint("total"), "int64")
    xptr, yptr = call.ptr(x_t), call.ptr(y_t)
    acc = em.slot(acc_type, "acc")
    with em.loop(n, "n") as bi, em.loop(oh, "oy") as oy, em.loop(ow, "ox") as ox, em.loop(oc, "oc") as o:
        b.store(em.load(bias, o), acc)
        group_base = em.mul(b.udiv(o, em.i64(cout_g)), cg) if cg != c else em.i64(0)
        with em.loop(kh, "ky") as ky:
            iy = window_coordinate(em, oy, sh, top, ky, dh)
            with em.loop(kw, "kx") as kx:
                ix = window_coordinate(em, ox, sw, left, kx, dw)
                x_base = b.add(em.index([(bi, h * w * c), (iy, w * c), (ix, c)]), group_base)
                w_base = em.index([(o, kh * kw * cg), (ky, kw * cg), (kx, cg)])

                def tap() -> None:
                    with em.loop(cg, "ic") as ic:
                        xv = em.add(em.load_i32(xptr, b.add(x_base, ic), x_t.dtype), -in_zp)
                        product = b.mul(xv, em.load_i32(wptr, b.add(w_base, ic), "int8"))
                        # int32 sums wrap (no nsw), as the C++ loop's would
                        b.store(b.add(b.load(acc), product if g.q31 else b.sext(product, I64)), acc)

                if padded:
                    with em.if_then(b.and_(em.in_range(iy, 0, h), em.in_range(ix, 0, w))):
                        tap()
                else:
                    tap()
        if not g.q31:  # int64 MultiplyByQuantizedMultiplier (mcuc.ir.ops.batch_matmul.multiply_int64)
            total = em.load(totals, o)
            rounding = b.shl(em.i64(1), b.sub(total, em.i64(1)))
            scaled = b.ashr(b.add(b.mul(b.load(acc), em.load(reduced, o)), rounding), total)
            y = em.clamp(em.add(b.trunc(scaled, I32), out_zp), a.act_min, a.act_max)
        else:
            y = requant(b.load(acc), o)
        em.store(em.narrow(y, y_t.dtype), yptr, em.index([(bi, oh * ow * oc), (oy, ow * oc), (ox, oc), (o, 1)]))

