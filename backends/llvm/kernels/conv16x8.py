"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with int16 activations and int8 weights
(16x8, mcuc.ir.ops.int16_stage), one output element at a time: every layer as a grouped
convolution over OHWI weights (a depthwise conv: one input channel per group, its
weights [1, kh, kw, C*M] moved to [C*M, kh, kw, 1]; a fully connected layer: a 1x1 window
over rows of `depth` channels), padding taps skipped. The sum is kept in the bias's type:
int64 (or no bias) with TFLite's int64 output stage, or int32, wrapping as tflite-micro's
loop does, with its Q31 stage."""
from __future__ import annotations

import numpy as np

from mcuc.ir.ops import kinds
from mcuc.ir.ops.batch_matmul import reduced_multiplier
from mcuc.ir.ops.common import channel_requant_params

from ..codegen import KernelCall
from ..emitter import I32, I64
from ..fixedpoint import ChannelRequant
from .conv_common import window_coordinate


def _geometry(op):
    """(n, h, w, c, oh, ow, weights OHWI, stride, dilation, (top, left), padded)."""
    x, w, y = op.inputs[0], op.inputs[1], op.output
    if op.kind == kinds.FULLY_CONNECTED:
        units, depth = w.shape
        rows = x.size // depth
        return rows, 1, 1, depth, 1, 1, w.data.reshape(units, 1, 1, depth), (1, 1), (1, 1), (0, 0), False
    a = op.attrs
    weights = w.data if op.kind == kinds.CONV_2D else np.transpose(w.data, (3, 1, 2, 0))
    p = a.padding
    padded = any((p.top, p.bottom, p.left, p.right))
    return (*x.shape, y.shape[1], y.shape[2], weights, a.stride, a.dilation, (p.top, p.left), padded)


def conv16x8(call: KernelCall) -> None:
    em, op = call.em, call.op
    b = em.b
    x_t, y_t = op.inputs[0], op.output
    n, h, w, c, oh, ow, weights, (sh, sw), (dh, dw), (top, left), padded = _geometry(op)
    oc, kh, kw, cg = weights.shape
    cout_g = oc // (c // cg)
    a = op.attrs
    bias_t = op.inputs[2] if len(op.inputs) > 2 else None
    wide = bias_t is None or bias_t.dtype == "int64"  # else tflite-micro's int32 sums
    acc_type, acc_dtype = (I64, "int64") if wide else (I32, "int32")
    bias = em.const_ptr(np.zeros(oc, acc_dtype) if bias_t is None else bias_t.data.astype(acc_dtype),
                        call.hint("bias"), acc_dtype)
    wptr = em.const_ptr(np.ascontiguousarray(weights).astype(np.int8), call.hint("weights"), "int8")
    mult, shift = (np.broadcast_to(np.asarray(v, np.int64), (oc,))
                   for v in channel_requant_params(op, x_t, op.inputs[1], y_t))
    in_zp = x_t.quant.scalar_zero_point  # 0 but for FULLY_CONNECTED
    out_zp = y_t.quant.scalar_zero_point
    if wide:
        reduced = em.const_ptr(np.asarray(reduced_multiplier(mult), np.int64), call.hint("m15"), "int64")
        totals = em.const_ptr(15 - shift, call.hint("total"), "int64")
    else:
        requant = ChannelRequant(em, mult, shift, out_zp, a.act_min, a.act_max, call.hint())
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
                        b.store(b.add(b.load(acc), b.sext(product, I64) if wide else product), acc)

                if padded:
                    with em.if_then(b.and_(em.in_range(iy, 0, h), em.in_range(ix, 0, w))):
                        tap()
                else:
                    tap()
        if wide:  # int64 MultiplyByQuantizedMultiplier (mcuc.ir.ops.batch_matmul.multiply_int64)
            total = em.load(totals, o)
            rounding = b.shl(em.i64(1), b.sub(total, em.i64(1)))
            scaled = b.ashr(b.add(b.mul(b.load(acc), em.load(reduced, o)), rounding), total)
            y = em.clamp(em.add(b.trunc(scaled, I32), out_zp), a.act_min, a.act_max)
        else:
            y = requant(b.load(acc), o)
        em.store(em.narrow(y, y_t.dtype), yptr, em.index([(bi, oh * ow * oc), (oy, ow * oc), (ox, oc), (o, 1)]))

